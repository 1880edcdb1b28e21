/**
 * Listing latency: `GET /devices/{id}/media?limit=50` with 10 million media rows over 1,000
 * devices. Server-side time comes from Fastify's own `responseTime` (its "request completed" log
 * line); client time is measured around each request. The baseline is the same SQL run directly.
 * The plan is checked with EXPLAIN: it must use the device index, not sort.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { createDevice } from '../src/auth/principals.ts';
import { startEmbedded } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { createPool } from '../src/db/pool.ts';
import { createLogger } from '../src/log.ts';
import { listMedia } from '../src/media/repo.ts';
import { spawnService } from '../test/helpers/process.ts';
import { freePort, testEnv } from '../test/helpers/server.ts';
import { fmt, log, percentile, report, reps, scratch, stat } from './lib/common.ts';

const ROWS = Number(process.env.BENCH_LIST_ROWS ?? 10_000_000);
const DEVICES = 1000;
const KNOWN = 10;
const REQUESTS = Number(process.env.BENCH_LIST_REQUESTS ?? 2000);
const ROUNDS = reps(3);
const logger = createLogger('silent');

// BENCH_LIST_DIR keeps the seeded database between runs (≈5 GB for 10 M rows); else it is deleted.
const keep = process.env.BENCH_LIST_DIR;
const work = keep ? { dir: keep, cleanup: async () => undefined } : await scratch('listing');
const pgDir = path.join(work.dir, 'pg');
const keysFile = path.join(work.dir, 'devices.json');
const database = await startEmbedded({ dir: pgDir, port: await freePort(), logger });
const pool = createPool(database.url, logger, 4);
await migrate(pool, logger);

async function seed(): Promise<{ id: string; key: string }[]> {
  const t0 = performance.now();
  const known: { id: string; key: string }[] = [];
  for (let i = 0; i < KNOWN; i++) {
    const { device, apiKey } = await createDevice(pool, { name: `bench-${i}` });
    known.push({ id: device.id, key: apiKey });
  }
  const c = await pool.connect();
  try {
    await c.query(
      `INSERT INTO devices (id, name, key_hash)
       SELECT gen_random_uuid(), 'seed-' || g, md5(g::text) || md5((-g)::text) FROM generate_series(1, $1::int) g`,
      [DEVICES - KNOWN],
    );
    // Row g belongs to device g % 1000; one row in a hundred of every device is DELETED (hidden by
    // the partial index). Bulk load without indexes (rebuilt afterwards, exactly as the migration defined them) and
    // without the per-row foreign-key trigger (the device ids come from the devices table).
    const { rows: indexes } = await c.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'media' AND indexname <> 'media_pkey'`,
    );
    // Foreign keys of other tables (variants, renditions, …) depend on media_pkey: dropped with it
    // and re-created, exactly as the migrations defined them, once the key is back.
    const { rows: referencing } = await c.query<{ tbl: string; name: string; def: string }>(
      `SELECT conrelid::regclass::text AS tbl, conname AS name, pg_get_constraintdef(oid) AS def
       FROM pg_constraint WHERE contype = 'f' AND confrelid = 'media'::regclass`,
    );
    for (const ix of indexes) await c.query(`DROP INDEX ${ix.indexname}`);
    for (const fk of referencing) await c.query(`ALTER TABLE ${fk.tbl} DROP CONSTRAINT ${fk.name}`);
    await c.query('ALTER TABLE media DROP CONSTRAINT media_pkey');
    await c.query(`SET session_replication_role = replica`);
    await c.query(`SET synchronous_commit = off`);
    await c.query(
      `CREATE TEMP TABLE devs AS SELECT (row_number() OVER (ORDER BY id) - 1)::int AS n, id FROM devices`,
    );
    const chunk = 1_000_000;
    for (let start = 0; start < ROWS; start += chunk) {
      await c.query(
        `INSERT INTO media (id, device_id, camera_id, captured_at, media_type, mime_type, file_name, bytes,
           storage_backend, storage_key, storage_uri, status, upload_expires_at, uploaded_at)
         SELECT gen_random_uuid(), d.id, 'cam' || (g % 4), timestamptz '2026-01-01' - make_interval(secs => g),
           'image', 'image/jpeg', 'seed.jpg', 100000, 'local', 'seed/' || g || '.jpg', '/seed/' || g || '.jpg',
           CASE WHEN (g / ${DEVICES}) % 100 = 0 THEN 'DELETED'::media_status ELSE 'READY'::media_status END,
           timestamptz '2026-01-02', timestamptz '2026-01-01'
         FROM generate_series($1::bigint, $2::bigint) g JOIN devs d ON d.n = g % ${DEVICES}`,
        [start + 1, Math.min(ROWS, start + chunk)],
      );
      log(
        `seeded ${Math.min(ROWS, start + chunk).toLocaleString()} rows (${fmt((performance.now() - t0) / 1000)} s)`,
      );
    }
    await c.query(`SET session_replication_role = origin`);
    await c.query(`SET maintenance_work_mem = '1GB'`);
    await c.query('ALTER TABLE media ADD CONSTRAINT media_pkey PRIMARY KEY (id)');
    for (const fk of referencing) await c.query(`ALTER TABLE ${fk.tbl} ADD CONSTRAINT ${fk.name} ${fk.def}`);
    for (const ix of indexes) await c.query(ix.indexdef);
    await c.query('VACUUM ANALYZE media');
    await c.query('ANALYZE devices');
  } finally {
    c.release();
  }
  log(`seeding done in ${fmt((performance.now() - t0) / 1000)} s`);
  return known;
}

const { rows: counted } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM devices');
let known: { id: string; key: string }[];
if (counted[0]!.n === 0 || !existsSync(keysFile)) {
  known = await seed();
  await writeFile(keysFile, JSON.stringify(known));
} else {
  known = JSON.parse(await readFile(keysFile, 'utf8')) as typeof known;
  log('reusing the seeded database in BENCH_LIST_DIR');
}
const seededSeconds = performance.now();
const { rows: sizeRows } = await pool.query<{ n: number; size: string }>(
  `SELECT (SELECT count(*) FROM media)::int AS n, pg_size_pretty(pg_total_relation_size('media')) AS size`,
);
log(`media: ${sizeRows[0]!.n.toLocaleString()} rows, ${sizeRows[0]!.size} with indexes`);

// EXPLAIN the listing query as the repository sends it (first page and a cursor page).
const LIST_SQL = `SELECT m.*, d.owner_user_id AS device_owner_user_id, m.captured_at::text AS captured_at_text
  FROM media m LEFT JOIN devices d ON d.id = m.device_id
  WHERE m.status <> 'DELETED' AND m.device_id = $1 ORDER BY m.captured_at DESC, m.id DESC LIMIT 51`;
type PlanNode = { 'Node Type': string; 'Index Name'?: string; Plans?: PlanNode[] };
const nodes = (p: PlanNode): PlanNode[] => [p, ...(p.Plans ?? []).flatMap(nodes)];
const explain = await pool.query<{ 'QUERY PLAN': [{ Plan: PlanNode; 'Execution Time': number }] }>(
  `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${LIST_SQL}`,
  [known[0]!.id],
);
const plan = explain.rows[0]!['QUERY PLAN'][0];
const planNodes = nodes(plan.Plan);
const indexesUsed = [...new Set(planNodes.flatMap((n) => (n['Index Name'] ? [n['Index Name']] : [])))];
const sorts = planNodes.filter((n) => n['Node Type'] === 'Sort').length;
const usesIndex = indexesUsed.includes('media_device_latest_idx') && sorts === 0;
log(`EXPLAIN: indexes ${indexesUsed.join(', ')}; sort nodes ${sorts}; ${plan['Execution Time']} ms`);

// The service on this database, logging each request's responseTime.
const serverTimes: number[] = [];
let capture = false;
const env = await testEnv(path.join(work.dir, 'mediary'), { DATABASE_URL: database.url, LOG_LEVEL: 'info' });
const svc = await spawnService(env, {
  onStdout(line) {
    if (!capture || !line.includes('request completed')) return;
    const entry = JSON.parse(line) as { responseTime?: number; res?: { statusCode?: number } };
    if (entry.responseTime !== undefined) serverTimes.push(entry.responseTime);
  },
});
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(
  url: string,
  key: string,
): Promise<{ ms: number; body: { nextCursor: string | null; items: unknown[] } }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http
      .get(url, { agent, headers: { authorization: `Bearer ${key}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`${res.statusCode} ${text.slice(0, 200)}`));
          else resolve({ ms: performance.now() - t0, body: JSON.parse(text) as never });
        });
      })
      .on('error', reject);
  });
}

/** REQUESTS sequential listings across the known devices; one in five follows a cursor. */
async function apiRound(): Promise<{ client: number[]; server: number[] }> {
  const client: number[] = [];
  serverTimes.length = 0;
  capture = true;
  const cursors = new Map<string, string | null>();
  for (let i = 0; i < REQUESTS; i++) {
    const dev = known[i % known.length]!;
    const cursor = i % 5 === 4 ? cursors.get(dev.id) : undefined;
    const q = `limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await get(svc.api(`/devices/${dev.id}/media?${q}`), dev.key);
    if (r.body.items.length !== 50) throw new Error(`expected 50 items, got ${r.body.items.length}`);
    cursors.set(dev.id, r.body.nextCursor);
    client.push(r.ms);
  }
  await new Promise((r) => setTimeout(r, 200)); // let the last log lines arrive
  capture = false;
  return { client, server: [...serverTimes] };
}

async function sqlRound(): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    await listMedia(pool, { scope: { deviceId: known[i % known.length]!.id }, limit: 51 });
    out.push(performance.now() - t0);
  }
  return out;
}

const p = (xs: number[], q: number) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    q,
  );
const srv = { p50: [] as number[], p99: [] as number[] };
const cli = { p50: [] as number[], p99: [] as number[] };
const sql = { p50: [] as number[], p99: [] as number[] };
try {
  await apiRound(); // warm-up: caches, JIT, connections
  await sqlRound();
  for (let round = 0; round < ROUNDS; round++) {
    const a = await apiRound();
    const b = await sqlRound();
    srv.p50.push(p(a.server, 50));
    srv.p99.push(p(a.server, 99));
    cli.p50.push(p(a.client, 50));
    cli.p99.push(p(a.client, 99));
    sql.p50.push(p(b, 50));
    sql.p99.push(p(b, 99));
    log(
      `listing round ${round + 1}/${ROUNDS}: server p50 ${fmt(p(a.server, 50))} p99 ${fmt(p(a.server, 99))} ms (${a.server.length} samples); client p50 ${fmt(p(a.client, 50))} p99 ${fmt(p(a.client, 99))} ms; SQL p50 ${fmt(p(b, 50))} p99 ${fmt(p(b, 99))} ms`,
    );
  }
} finally {
  agent.destroy();
  await svc.kill('SIGTERM');
  await pool.end();
  await database.stop();
  await work.cleanup();
}

const rowsLabel = ROWS >= 1e6 ? `${ROWS / 1e6} M` : ROWS.toLocaleString();
const base = { bench: `list limit=50, ${rowsLabel} rows / ${DEVICES} devices`, unit: 'ms' };
await report({
  name: 'listing',
  rows: [
    {
      ...base,
      figure: 'server-side p99 (Fastify responseTime)',
      value: stat(srv.p99),
      baselineName: 'same SQL direct, p99',
      baseline: stat(sql.p99),
      ratio: stat(srv.p99).median / stat(sql.p99).median,
      ratioMeaning: 'API / SQL',
      goal: '≤ 5 ms',
      met: stat(srv.p99).median <= 5,
    },
    {
      ...base,
      figure: 'server-side p50',
      value: stat(srv.p50),
      baselineName: 'same SQL direct, p50',
      baseline: stat(sql.p50),
      ratio: stat(srv.p50).median / stat(sql.p50).median,
      ratioMeaning: 'API / SQL',
      goal: '—',
      met: null,
    },
    {
      ...base,
      figure: 'client-side p99 (keep-alive, sequential)',
      value: stat(cli.p99),
      baselineName: 'same SQL direct, p99',
      baseline: stat(sql.p99),
      ratio: stat(cli.p99).median / stat(sql.p99).median,
      ratioMeaning: 'client / SQL',
      goal: '—',
      met: null,
    },
    {
      ...base,
      figure: 'client-side p50',
      value: stat(cli.p50),
      baselineName: 'same SQL direct, p50',
      baseline: stat(sql.p50),
      ratio: stat(cli.p50).median / stat(sql.p50).median,
      ratioMeaning: 'client / SQL',
      goal: '—',
      met: null,
    },
  ],
  notes: [
    `${REQUESTS} sequential requests per round over ${KNOWN} devices, one in five a cursor page; ${ROUNDS} rounds after a warm-up round.`,
    `EXPLAIN (first page): ${indexesUsed.join(' + ')}; ${sorts} sort nodes; ${usesIndex ? 'uses the device index, no sort' : 'DOES NOT use the device index as expected'}; execution ${fmt(plan['Execution Time'])} ms.`,
    `media table: ${sizeRows[0]!.n.toLocaleString()} rows, ${sizeRows[0]!.size} with indexes; measured ${fmt((performance.now() - seededSeconds) / 1000)} s after seeding.`,
  ],
});
