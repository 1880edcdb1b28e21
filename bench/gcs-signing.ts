/**
 * Signing 100 multipart part URLs on the GCS store: with a local service-account key versus
 * through the IAM Credentials signBlob API (keyless, as on Cloud Run), the latter against a local
 * HTTP endpoint that answers like the IAM API (the test stand-in's), so only our side and one
 * loopback round trip per URL are measured: add the real network latency to Google per URL.
 * Prints a table, writes bench/results/gcs-signing.json.
 *   npm run bench:gcs
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OAuth2Client } from 'google-auth-library';
import { GcsObjectStore } from '../src/storage/gcs.ts';
import { SignBlobAuth } from '../src/storage/gcs-signing.ts';
import { GCS_CLIENT_EMAIL, GCS_KEY_FILE, startGcsStandin } from '../test/helpers/gcs-standin.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const PARTS = 100;
const ROUNDS = 5;
const MiB = 1024 * 1024;

const gcs = await startGcsStandin();
try {
  const common = {
    bucket: 'bench',
    apiEndpoint: gcs.endpoint,
    singlePutMaxBytes: 16 * MiB,
    partSize: 16 * MiB,
  };
  const local = new GcsObjectStore({ ...common, keyFile: GCS_KEY_FILE });
  const token = new OAuth2Client();
  token.setCredentials({ access_token: 'bench-token', expiry_date: Date.now() + 3600_000 });
  const keyless = new GcsObjectStore({
    ...common,
    signingEndpoint: gcs.signingEndpoint,
    auth: new SignBlobAuth(GCS_CLIENT_EMAIL, { authClient: token }),
  });

  const sign = (store: GcsObjectStore, n: number) =>
    store.presignPart('bench/video.mp4', 'upload-id', n, 16 * MiB, 900);
  const numbers = Array.from({ length: PARTS }, (_, i) => i + 1);
  const modes = {
    sequential: async (store: GcsObjectStore) => {
      for (const n of numbers) await sign(store, n);
    },
    // As the API signs a batch of part numbers (POST /media/{id}/parts): all at once.
    parallel: async (store: GcsObjectStore) => {
      await Promise.all(numbers.map((n) => sign(store, n)));
    },
  };
  const results: Record<string, unknown>[] = [];
  for (const [signer, store] of [
    ['local key', local],
    ['signBlob (loopback)', keyless],
  ] as const) {
    for (const [mode, run] of Object.entries(modes)) {
      await run(store); // warm-up
      const times: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const t0 = process.hrtime.bigint();
        await run(store);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)]!;
      results.push({
        signer,
        mode,
        parts: PARTS,
        rounds: ROUNDS,
        medianMs: +median.toFixed(1),
        perUrlMs: +(median / PARTS).toFixed(3),
      });
    }
  }
  console.log(`Signing ${PARTS} part URLs (median of ${ROUNDS})`);
  console.log('signer               mode        total ms   per URL ms');
  for (const r of results)
    console.log(
      `${String(r.signer).padEnd(20)} ${String(r.mode).padEnd(11)} ${String(r.medianMs).padStart(8)}   ${String(r.perUrlMs).padStart(10)}`,
    );
  console.log(`signBlob calls answered by the stand-in: ${gcs.signBlobCalls}`);
  const out = path.resolve(here, 'results/gcs-signing.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpus: os.cpus().length,
        note: 'signBlob against a loopback stand-in: add the network round trip to iamcredentials.googleapis.com per URL',
        results,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${out}`);
} finally {
  await gcs.close();
}
