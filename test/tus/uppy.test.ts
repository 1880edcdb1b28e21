/**
 * Uppy (@uppy/core + @uppy/tus) in Debian's Chromium, on a page of another origin (CORS_ORIGINS),
 * against the local store and Ceph S3: a file added through a file input goes up in 1 MiB PATCHes;
 * one PATCH in the middle is cut (the browser's request aborted once); Uppy asks HEAD and resumes
 * from that offset, not from zero, and the media ends READY with the file's sha256.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { launchChromium, startPageServer } from '../helpers/browser.ts';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { sha256 } from '../helpers/files.ts';
import { MiB } from '../helpers/multipart-suite.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { paddedJpeg } from './protocol-suite.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let ceph: Ceph;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let pageServer: Awaited<ReturnType<typeof startPageServer>>;
const servers: Partial<Record<'local' | 's3', TestServer>> = {};

before(async () => {
  const bundle = await build({
    entryPoints: [path.join(ROOT, 'test/tus/browser/uppy-page.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    write: false,
    logLevel: 'silent',
    absWorkingDir: ROOT,
  });
  pageServer = await startPageServer(bundle.outputFiles[0]!.text);
  ceph = await startCeph();
  const env = {
    CORS_ORIGINS: pageServer.url,
    MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
    TUS_CHECKPOINT_BYTES: String(MiB),
  };
  servers.local = await startTestServer(env);
  servers.s3 = await startTestServer({ ...ceph.serverEnv('mediary-tus-uppy'), ...env });
  const setup = await mediary(['storage', 'setup'], servers.s3.env);
  assert.equal(setup.code, 0, setup.stdout + setup.stderr);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  for (const s of Object.values(servers)) await s.close();
  await pageServer?.close();
  await ceph?.stop();
});

for (const backend of ['local', 's3'] as const) {
  describe(`Uppy in Chromium, ${backend}`, () => {
    test('a PATCH cut mid-way: Uppy resumes at the server’s offset, READY with the right sha256', async () => {
      const t = servers[backend]!;
      const u = await t.user(`uppy-${backend}`);
      const file = await paddedJpeg(6 * MiB + 777);
      const dir = await tempDir('mediary-uppy-');
      const filePath = path.join(dir, 'from-uppy.jpg');
      await writeFile(filePath, file);

      const page = await browser.context.newPage();
      const seen: { method: string; offset: string | null }[] = [];
      let cutAt: number | undefined;
      await page.route(`${t.api('/tus')}**`, async (route) => {
        const req = route.request();
        const offset = req.headers()['upload-offset'] ?? null;
        seen.push({ method: req.method(), offset });
        if (cutAt === undefined && req.method() === 'PATCH' && Number(offset) >= 2 * MiB) {
          cutAt = Number(offset);
          await route.abort('connectionreset');
          return;
        }
        await route.continue();
      });
      try {
        await page.goto(pageServer.url);
        await page.evaluate((run) => window.startUppy(run), { endpoint: t.api('/tus/'), token: u.token });
        await page.setInputFiles('#file', filePath);
        await page.waitForFunction(() => window.uppyResult !== undefined, undefined, { timeout: 60_000 });
        const result = await page.evaluate(() => window.uppyResult!);
        assert.equal(result.ok, true, result.error);

        assert.ok(cutAt !== undefined, 'a PATCH was cut');
        const cut = seen.findIndex((r) => r.method === 'PATCH' && Number(r.offset) === cutAt);
        const after = seen.slice(cut + 1);
        assert.ok(
          after.some((r) => r.method === 'HEAD'),
          `Uppy asked where to resume: ${JSON.stringify(seen)}`,
        );
        const resumed = after.find((r) => r.method === 'PATCH');
        assert.equal(Number(resumed?.offset), cutAt, 'resumed at the offset of the cut PATCH, not from zero');
        assert.ok(!after.some((r) => r.method === 'POST'), 'no new upload was created after the cut');

        const mediaId = result.uploadURL!.split('/').pop()!;
        let row: { status: string; content_sha256: string | null; file_name: string } | undefined;
        for (let i = 0; i < 600; i++) {
          row = (
            await t.server.database.pool.query(
              'SELECT status, content_sha256, file_name FROM media WHERE id = $1',
              [mediaId],
            )
          ).rows[0];
          if (row?.status === 'READY' || row?.status === 'FAILED') break;
          await sleep(100);
        }
        assert.equal(row?.status, 'READY', JSON.stringify(row));
        assert.equal(row?.content_sha256, sha256(file));
        assert.equal(row?.file_name, 'from-uppy.jpg');
      } finally {
        await page.close();
      }
    });
  });
}
