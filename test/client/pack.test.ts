/**
 * The package as npm publishes it: `npm pack` (prepack builds dist/), unpacked into a scratch
 * project, must import from Node, bundle for the browser, type-check with tsc, and its standalone
 * browser build must work from a plain `<script type="module">` page in Chromium, uploading a file
 * to a real server.
 *
 * The scratch project lives under the repository's .tmp/ and gets the tarball's contents as
 * node_modules/mediary; its dependencies resolve from the repository's node_modules further up
 * (the exact versions of the lock file, no registry needed, seconds instead of a full install).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { launchChromium } from '../helpers/browser.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

let scratch: string;
let pkgDir: string;
let files: string[];

before(async () => {
  await mkdir(path.join(ROOT, '.tmp'), { recursive: true });
  scratch = await mkdtemp(path.join(ROOT, '.tmp', 'pack-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', scratch], {
    cwd: ROOT,
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as {
    filename: string;
    files: { path: string }[];
  }[];
  files = packed!.files.map((f) => f.path);
  pkgDir = path.join(scratch, 'node_modules', 'mediary');
  await mkdir(pkgDir, { recursive: true });
  await run('tar', ['-xzf', path.join(scratch, packed!.filename), '-C', pkgDir, '--strip-components=1']);
  await writeFile(path.join(scratch, 'package.json'), '{"name":"scratch","private":true,"type":"module"}\n');
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  test('holds the built client and the sources the mediary command runs', () => {
    for (const f of [
      'dist/client/index.js',
      'dist/client/index.d.ts',
      'dist/client/node.js',
      'dist/client/node.d.ts',
      'dist/client/mediary.browser.js',
      // The SDK's types are the contract's Static types.
      'dist/contract/index.d.ts',
      'bin/mediary.mjs',
      'src/main.ts',
      // Read at run time: the migrations and the gRPC API's proto.
      'src/db/migrations/0001_init.sql',
      'proto/mediary/v1/media.proto',
    ]) {
      assert.ok(files.includes(f), `${f} is in the tarball`);
    }
    assert.ok(!files.some((f) => f.startsWith('test/')), 'no tests');
  });

  test('mediary/client/node and mediary/client/browser import from Node', async () => {
    const script = `
      import { uploadFile, MediaryClient } from 'mediary/client/node';
      import * as browser from 'mediary/client/browser';
      import * as auto from 'mediary/client';
      console.log(JSON.stringify([typeof uploadFile, typeof MediaryClient, typeof browser.uploadFile, typeof auto.uploadFile]));
    `;
    await writeFile(path.join(scratch, 'node-import.mjs'), script);
    const { stdout } = await run(process.execPath, ['node-import.mjs'], { cwd: scratch });
    assert.deepEqual(JSON.parse(stdout), ['function', 'function', 'function', 'function']);
  });

  test('mediary/client/browser bundles for the browser, and the types check with tsc', async () => {
    await writeFile(
      path.join(scratch, 'app.ts'),
      `import { uploadFile, type MediaView, type UploadResult } from 'mediary/client/browser';
// The wire types come from the contract: fields the server sends are there, typed.
export const firstVariantUrl = (m: MediaView): string | undefined => m.variants[0]?.downloadUrl;
// @ts-expect-error a status the server never sends
export const bad: MediaView['status'] = 'DONE';
export async function send(file: File): Promise<string> {
  const r: UploadResult = await uploadFile(file, { server: 'https://media.example', key: 'k' });
  return r.mediaId;
}
// @ts-expect-error the options are typed
void uploadFile(new Blob([]), { server: 1 });
`,
    );
    await writeFile(
      path.join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'esnext',
          moduleResolution: 'bundler',
          lib: ['es2022', 'dom'],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: [],
        },
        files: ['app.ts'],
      }),
    );
    await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', scratch], {
      cwd: scratch,
    });
    const result = await build({
      entryPoints: [path.join(scratch, 'app.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      absWorkingDir: scratch,
    });
    assert.equal(result.errors.length, 0);
    assert.match(result.outputFiles[0]!.text, /sha256|SHA256/i);
  });
});

describe('the standalone browser build', () => {
  let t: TestServer;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: { url: string; close(): Promise<void> };

  before(async () => {
    // The page is on another origin than the API, as a site using the SDK from a CDN would be.
    const js = await readFile(path.join(pkgDir, 'dist/client/mediary.browser.js'));
    const html = `<!doctype html><meta charset="utf-8"><title>standalone</title>
<script type="module">
  import { uploadFile } from './mediary.browser.js';
  window.upload = async (server, key) => {
    const bytes = new Uint8Array(await (await fetch('./photo.png')).arrayBuffer());
    const file = new File([bytes], 'photo.png', { type: 'image/png' });
    const r = await uploadFile(file, { server, key, stateStore: null });
    return { mediaId: r.mediaId, status: r.status, sha256: r.sha256 };
  };
  window.ready = true;
</script>`;
    const sharp = (await import('sharp')).default;
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#3a7' } })
      .png()
      .toBuffer();
    const server = createServer((req, res) => {
      const p = (req.url ?? '/').split('?')[0] ?? '/';
      const body = p === '/' ? html : p === '/mediary.browser.js' ? js : p === '/photo.png' ? png : undefined;
      if (body === undefined) return void res.writeHead(404).end();
      const type = p === '/' ? 'text/html' : p.endsWith('.js') ? 'text/javascript' : 'image/png';
      res.writeHead(200, { 'content-type': type }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    page = {
      url: origin,
      close: () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
    t = await startTestServer({ CORS_ORIGINS: origin });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await page?.close();
    await t?.close();
  });

  test('a plain page loads it with <script type="module"> and uploads a file to a real server', async () => {
    const device = await t.device('standalone');
    const errors: string[] = [];
    browser.page.on('pageerror', (e) => errors.push(e.message));
    await browser.page.goto(`${page.url}/`);
    await browser.page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    const result = await browser.page.evaluate(
      ([server, key]) =>
        (
          window as unknown as {
            upload(s: string, k: string): Promise<{ mediaId: string; status: string; sha256: string }>;
          }
        ).upload(server!, key!),
      [t.base, device.key],
    );
    assert.deepEqual(errors, []);
    assert.match(result.status, /^(UPLOADED|PROCESSING|READY)$/);
    const m = await call(t.api(`/media/${result.mediaId}`), { headers: device.auth });
    assert.equal(m.status, 200);
    assert.equal(m.body.sha256, result.sha256);
  });
});
