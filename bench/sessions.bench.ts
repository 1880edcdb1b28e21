/**
 * Upload sessions per second: `POST /api/v1/media` under autocannon against raw single-row INSERTs
 * of the same media row into the same Postgres (same pool size, same concurrency). The service runs
 * twice side by side on one database, with the rate limits' counters in Postgres (the default,
 * shared by every API process) and in memory (per process), and each round measures both.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import autocannon from 'autocannon';
import { embeddedUrl, makeDevices, poolFor, spawnService } from '../test/helpers/process.ts';
import { testEnv } from '../test/helpers/server.ts';
import { fmt, log, report, reps, scratch, stat } from './lib/common.ts';

const SECONDS = Number(process.env.BENCH_SESSIONS_SECONDS ?? 10);
const CONNECTIONS = 32;
const ROUNDS = reps(3);

const work = await scratch('sessions');
const env = await testEnv(path.join(work.dir, 'mediary'), {
  LOG_LEVEL: 'warn',
  RATE_LIMIT_SESSIONS_PER_MINUTE: '1000000',
  // Far above what a run opens, so the quota check runs (and is measured) without refusing.
  QUOTA_DEVICE_OPEN_SESSIONS: '100000000',
  QUOTA_USER_OPEN_SESSIONS: '100000000',
});
const svc = await spawnService({ ...env, RATE_LIMIT_STORE: 'postgres' });
const url = embeddedUrl(env.DATA_DIR!, env.EMBEDDED_PG_PORT!);
// The same service with per-process counters, on the first one's database (idle while the other runs).
const memEnv = await testEnv(path.join(work.dir, 'mediary-memory'), {
  LOG_LEVEL: 'warn',
  RATE_LIMIT_SESSIONS_PER_MINUTE: '1000000',
  QUOTA_DEVICE_OPEN_SESSIONS: '100000000',
  QUOTA_USER_OPEN_SESSIONS: '100000000',
  RATE_LIMIT_STORE: 'memory',
  DATABASE_URL: url,
  WORKER_ENABLED: 'false',
  SWEEP_INTERVAL_SECONDS: '0',
});
const svcMemory = await spawnService(memEnv);
const db = poolFor(url, 20);
const [dev] = await makeDevices(db, 1, 'bench');

async function service(target = svc): Promise<{ rps: number; p99: number; non2xx: number }> {
  const r = await autocannon({
    url: target.api('/media'),
    method: 'POST',
    headers: { ...dev!.auth, 'content-type': 'application/json' },
    body: JSON.stringify({ fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: 123456 }),
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  return { rps: r.requests.average, p99: r.latency.p99, non2xx: r.non2xx + r.errors };
}

/**
 * The same row the service inserts for a session, one INSERT per statement, as fast as possible;
 * `prepared`: as a named statement (parsed and planned once per connection, as the service does).
 */
async function raw(prepared = false): Promise<number> {
  const deadline = Date.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() < deadline) {
        const id = randomUUID();
        const text = `INSERT INTO media (id, owner_user_id, device_id, camera_id, message_id, idempotency_key, captured_at, reason,
             media_type, mime_type, file_name, bytes, sha256, storage_backend, storage_key, storage_uri, upload_expires_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) ON CONFLICT DO NOTHING`;
        const values = [
          id,
          null,
          dev!.id,
          'default',
          null,
          null,
          new Date(),
          null,
          'image',
          'image/jpeg',
          'p.jpg',
          123456,
          null,
          'local',
          `raw/${id}.jpg`,
          `/raw/${id}.jpg`,
          new Date(Date.now() + 86_400_000),
        ];
        await db.query(prepared ? { name: 'raw-insert', text, values } : { text, values });
        n++;
      }
    }),
  );
  return n / SECONDS;
}

const svcRps: number[] = [];
const memoryRps: number[] = [];
const rawRps: number[] = [];
const preparedRps: number[] = [];
const p99: number[] = [];
let errors = 0;
try {
  for (let round = 0; round < ROUNDS; round++) {
    const r = await raw();
    rawRps.push(r);
    const rp = await raw(true);
    preparedRps.push(rp);
    // Alternate which store goes first, so neither always runs on the warmer database.
    const order = round % 2 ? (['memory', 'postgres'] as const) : (['postgres', 'memory'] as const);
    let s = { rps: 0, p99: 0, non2xx: 0 };
    let m = { rps: 0, p99: 0, non2xx: 0 };
    for (const which of order) {
      if (which === 'postgres') s = await service(svc);
      else m = await service(svcMemory);
    }
    svcRps.push(s.rps);
    memoryRps.push(m.rps);
    p99.push(s.p99);
    errors += s.non2xx + m.non2xx;
    log(
      `sessions round ${round + 1}/${ROUNDS}: service ${fmt(s.rps)}/s (p99 ${s.p99} ms), memory rate limits ${fmt(m.rps)}/s (p99 ${m.p99} ms), raw INSERT ${fmt(r)}/s, prepared ${fmt(rp)}/s`,
    );
  }
} finally {
  await db.end();
  await svcMemory.kill('SIGTERM');
  await svc.kill('SIGTERM');
  await work.cleanup();
}

const s = stat(svcRps);
const r = stat(rawRps);
const rp = stat(preparedRps);
const mem = stat(memoryRps);
await report({
  name: 'sessions',
  rows: [
    {
      bench: 'POST /media sessions/s',
      figure: `autocannon ${CONNECTIONS} conns, ${SECONDS} s`,
      unit: 'req/s',
      value: s,
      baselineName: 'raw single-row INSERT (same PG, 32 workers)',
      baseline: r,
      ratio: s.median / r.median,
      ratioMeaning: 'service / raw',
      goal: '≥ 0.5×',
      met: s.median / r.median >= 0.5 && errors === 0,
    },
    {
      bench: 'POST /media sessions/s',
      figure: `autocannon ${CONNECTIONS} conns, ${SECONDS} s`,
      unit: 'req/s',
      value: s,
      baselineName: 'raw INSERT as a prepared statement',
      baseline: rp,
      ratio: s.median / rp.median,
      ratioMeaning: 'service / prepared raw',
      goal: '— (stricter baseline)',
      met: null,
    },
    {
      bench: 'POST /media sessions/s',
      figure: `rate limits in Postgres (shared), ${CONNECTIONS} conns`,
      unit: 'req/s',
      value: s,
      baselineName: 'same service, rate limits in memory (per process)',
      baseline: mem,
      ratio: s.median / mem.median,
      ratioMeaning: 'postgres / memory counters',
      goal: '— (cost of shared limits)',
      met: null,
    },
  ],
  notes: [
    `Session latency p99 per round: ${p99.join(', ')} ms; non-2xx or errors: ${errors}.`,
    `Client (autocannon or pg), service and Postgres share the 2 cores; device-key cache ${process.env.DEVICE_KEY_CACHE_SECONDS ?? '30 (default)'} s; a new session is one INSERT … RETURNING + signing (the device key is resolved from the in-memory cache, DEVICE_KEY_CACHE_SECONDS, on by default; run with DEVICE_KEY_CACHE_SECONDS=0 to measure without it).`,
  ],
});
