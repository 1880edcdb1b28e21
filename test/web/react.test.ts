/**
 * The React bindings in Chromium: `<MediaryUploader>` (the web component as a React component, its
 * events as props) and `useUpload` upload real files to a real server from a page on another origin.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { launchChromium, startPageServer } from '../helpers/browser.ts';
import { fixture } from '../helpers/files.ts';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { dropFiles } from '../helpers/web.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let t: TestServer;
let pages: Awaited<ReturnType<typeof startPageServer>>;
let browser: Awaited<ReturnType<typeof launchChromium>>;

before(async () => {
  const js = await build({
    absWorkingDir: ROOT,
    entryPoints: ['test/web/react-page.ts'],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'chrome120',
    define: { 'process.env.NODE_ENV': '"production"' },
    write: false,
    logLevel: 'silent',
  });
  pages = await startPageServer(js.outputFiles[0]!.text);
  t = await startTestServer({ CORS_ORIGINS: pages.url, WORKER_ENABLED: 'false' });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await t?.close();
  await pages?.close();
});

test('MediaryUploader and useUpload upload from a React app', { timeout: 120_000 }, async () => {
  const user = await t.user('rita');
  const dir = await tempDir('mediary-react-');
  const a = path.join(dir, 'a.jpg');
  const b = path.join(dir, 'b.jpg');
  await writeFile(a, fixture('cameras/Pentax_K10D.jpg'));
  await writeFile(b, fixture('cameras/Canon_40D.jpg'));
  const page = browser.page;
  await page.goto(`${pages.url}/`);
  await page.evaluate((p) => (globalThis as any).start(p), { server: t.base, token: user.token });
  await page.locator('mediary-uploader').waitFor();
  await dropFiles(page, [a]);
  await page.waitForFunction(() => (globalThis as any).uploaded.length === 1, undefined, { timeout: 60_000 });
  const fromElement = await page.evaluate(() => (globalThis as any).uploaded[0] as string);
  await page.setInputFiles('#hook-file', b);
  await page.locator('#hook-status', { hasText: /^done / }).waitFor({ timeout: 60_000 });
  const fromHook = (await page.locator('#hook-status').innerText()).replace('done ', '');
  for (const [id, name] of [
    [fromElement, 'a.jpg'],
    [fromHook, 'b.jpg'],
  ] as const) {
    const m = await call(t.api(`/media/${id}`), { headers: user.auth });
    assert.equal(m.status, 200);
    assert.equal(m.body.fileName, name);
    assert.equal(m.body.status, 'UPLOADED');
  }
});
