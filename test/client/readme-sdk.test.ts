/**
 * README "Using the SDK": the code blocks run as written. The Node block in a `node` process
 * against a real server (with a worker, so `wait: true` sees READY); the browser blocks as a page
 * in Debian's Chromium, on the API's origin (a loopback proxy serves the page, the token endpoint
 * the example asks, and forwards the rest), where a file typed application/octet-stream is
 * inferred and an upload is paused and resumed from the page's button.
 * The only change made to the blocks: `mediary/client…` imports point at this checkout's source.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { mintUserToken } from '../../src/auth/principals.ts';
import { launchChromium } from '../helpers/browser.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { MiB, videoBytes } from '../helpers/multipart-suite.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { call, JWT_SECRET, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The README's code block after `<!-- sdk-example: NAME -->`. */
async function example(name: string): Promise<string> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const m = new RegExp(`<!-- sdk-example: ${name} -->\\s*\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(m, `README.md has the ${name} example`);
  return m[1]!;
}

/** Points the example's package imports at this checkout's source (nothing else changes). */
function localImports(code: string, as: 'url' | 'path' = 'url'): string {
  const src = (f: string) => {
    const p = path.join(ROOT, 'src/client', f);
    return as === 'url' ? pathToFileURL(p).href : p;
  };
  const out = code
    .replace(/from 'mediary\/client\/node'/g, `from '${src('node.ts')}'`)
    .replace(/from 'mediary\/client'/g, `from '${src('index.ts')}'`);
  assert.notEqual(out, code, 'the example imports the SDK');
  return out;
}

let t: TestServer;
let proxy: Proxy;
let dir: string;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
/** Whom the page's `/auth/token` answers for. */
let pageUser = 'readme-browser';

before(async () => {
  const html = `<!doctype html><meta charset="utf-8"><title>README example</title>\n${await example('browser-html')}`;
  const js = (
    await build({
      stdin: { contents: localImports(await example('browser-js'), 'path'), resolveDir: ROOT, loader: 'js' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'chrome120',
      write: false,
      logLevel: 'silent',
      absWorkingDir: ROOT,
    })
  ).outputFiles[0]!.text;
  const local = (req: IncomingMessage, res: ServerResponse): boolean => {
    const p = (req.url ?? '/').split('?')[0];
    if (p === '/' || p === '/upload.js') {
      res.writeHead(200, { 'content-type': p === '/' ? 'text/html; charset=utf-8' : 'text/javascript' });
      res.end(p === '/' ? html : js);
      return true;
    }
    if (p === '/auth/token') {
      void mintUserToken(JWT_SECRET, pageUser).then((tok) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(tok);
      });
      return true;
    }
    if (p === '/favicon.ico') {
      res.writeHead(204).end();
      return true;
    }
    return false;
  };
  proxy = await startProxy(0, { local });
  // Multipart from 5 MiB (so there is something to pause); the worker runs (the Node example waits).
  t = await startTestServer({
    MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
    MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
    PUBLIC_URL: proxy.url,
  });
  proxy.setTarget(`http://127.0.0.1:${t.config.port}`);
  dir = await tempDir('mediary-readme-');
  browser = await launchChromium();
  page = browser.page;
});
after(async () => {
  await browser?.close();
  await proxy?.close();
  await t?.close();
});

const status = () => page.evaluate(() => document.getElementById('status')!.textContent ?? '');
async function waitForStatus(re: RegExp): Promise<string> {
  await page.waitForFunction(
    (src) => new RegExp(src).test(document.getElementById('status')!.textContent ?? ''),
    re.source,
    { timeout: 60_000 },
  );
  return status();
}

describe('README: Using the SDK', () => {
  test('the Node example uploads a photo and waits until it is READY', async () => {
    const device = await t.device('readme-node');
    const script = path.join(dir, 'upload.mjs');
    await writeFile(script, localImports(await example('node')));
    const photo = fixture('cameras/Canon_40D.jpg');
    const file = path.join(dir, 'photo.jpg');
    await writeFile(file, photo);
    const child = spawn(process.execPath, ['--import', 'tsx', script, file], {
      cwd: ROOT,
      env: { ...process.env, MEDIARY_SERVER: proxy.url, MEDIARY_KEY: device.key, XDG_STATE_HOME: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0, err);
    const printed = JSON.parse(out) as { mediaId: string; status: string; type: string };
    assert.deepEqual([printed.status, printed.type], ['READY', 'image/jpeg']);
    assert.match(err, /^hashing /m, 'progress was printed, hashing first');
    const media = await call(t.api(`/media/${printed.mediaId}`), { headers: device.auth });
    assert.equal(media.body.sha256, sha256(photo));
  });

  test('the browser example in Chromium: an application/octet-stream PNG goes up as image/png', async () => {
    pageUser = 'readme-png';
    await page.goto(`${proxy.url}/`);
    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c84' } })
      .png()
      .toBuffer();
    await page.setInputFiles('#file', {
      name: 'photo.png',
      mimeType: 'application/octet-stream',
      buffer: png,
    });
    const shown = await waitForStatus(/^[0-9a-f-]{36} /);
    const mediaId = shown.split(' ')[0]!;
    const user = await t.user(pageUser);
    const media = await call(t.api(`/media/${mediaId}`), { headers: user.auth });
    assert.equal(media.status, 200, media.text);
    assert.equal(media.body.mimeType, 'image/png');
    assert.equal(media.body.sha256, sha256(png));
    const bar = await page.evaluate(() => {
      const b = document.getElementById('bar') as HTMLProgressElement;
      return { value: b.value, max: b.max };
    });
    assert.deepEqual(bar, { value: png.length, max: png.length });
  });

  test('the browser example in Chromium: the pause button stops sending, keeps the session, and resumes', async () => {
    pageUser = 'readme-pause';
    await page.goto(`${proxy.url}/`);
    const data = videoBytes(11 * MiB); // 3 parts
    const from = proxy.seen.length;
    const parts = () => proxy.seen.slice(from).filter((s) => s.part !== undefined);
    // Part 1 goes through; parts 2 and 3 are slow the first time, so the pause finds them in flight.
    proxy.misbehave((_req, { part, attempt }) =>
      part !== undefined && part > 1 && attempt === 1 ? { delayMs: 5000 } : undefined,
    );
    try {
      await page.setInputFiles('#file', { name: 'clip.mp4', mimeType: 'video/mp4', buffer: data });
      const deadline = Date.now() + 60_000;
      // A part answered 200 (entries are recorded when a request starts, status when it ends).
      while (!parts().some((p) => p.status === 200)) {
        assert.ok(Date.now() < deadline, 'a part was stored in time');
        await sleep(20);
      }
      await page.click('#pause');
      await waitForStatus(/^paused$/);
      await sleep(300);
      const sent = parts().length;
      await sleep(700);
      assert.equal(parts().length, sent, 'no part sent while paused');
      const stored = parts().filter((p) => p.status === 200).length;
      const user = await t.user(pageUser);
      const list = await call(t.api('/users/me/media'), { headers: user.auth });
      assert.equal(list.body.items.length, 1);
      assert.equal(list.body.items[0].status, 'PENDING', 'the session is still open');
      const mediaId = list.body.items[0].mediaId as string;
      assert.equal(await status(), 'paused');

      await page.click('#pause');
      const shown = await waitForStatus(/^[0-9a-f-]{36} /);
      assert.match(shown, new RegExp(`^${mediaId} (UPLOADED|PROCESSING|READY|FAILED)$`));
      const resent = parts().slice(sent);
      assert.equal(resent.length, 3 - stored, 'after resume, only the missing parts are sent');
      const after = await call(t.api('/users/me/media'), { headers: user.auth });
      assert.equal(after.body.items.length, 1, 'one session, resumed');
      assert.equal(after.body.items[0].sha256, sha256(data));
      assert.deepEqual(
        [
          ...new Set(
            parts()
              .filter((p) => p.outcome === 'ok')
              .map((p) => p.part),
          ),
        ].sort(),
        [1, 2, 3],
      );
    } finally {
      proxy.misbehave();
    }
  });
});
