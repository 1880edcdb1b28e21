/**
 * The browser SDK test page and Debian's Chromium (driven by playwright-core, which never downloads
 * a browser): the page script is test/client/browser/page.ts bundled by esbuild; `pageHandler`
 * answers `/` and `/sdk.js` from any HTTP server (the same-origin proxy, or a server of its own on
 * another origin).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { tempDir } from './server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Bundles the test page script with the SDK's browser entry. */
export async function bundleTestPage(): Promise<string> {
  const bundle = await build({
    entryPoints: [path.join(ROOT, 'test/client/browser/page.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    write: false,
    logLevel: 'silent',
    absWorkingDir: ROOT,
  });
  return bundle.outputFiles[0]!.text;
}

/** Answers the page's own requests (`/`, `/sdk.js`, `/favicon.ico`); false for anything else. */
export function pageHandler(js: string): (req: IncomingMessage, res: ServerResponse) => boolean {
  const html =
    '<!doctype html><meta charset="utf-8"><title>Mediary SDK</title><script src="/sdk.js"></script>';
  return (req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    if (p === '/' || p === '/sdk.js') {
      res.writeHead(200, {
        'content-type': p === '/' ? 'text/html; charset=utf-8' : 'text/javascript',
        'cache-control': 'no-store',
      });
      res.end(p === '/' ? html : js);
      return true;
    }
    if (p === '/favicon.ico') {
      res.writeHead(204).end();
      return true;
    }
    return false;
  };
}

/** A loopback server that serves the test page only: an origin of its own (`http://127.0.0.1:PORT`). */
export async function startPageServer(
  js: string,
  port = 0,
): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const serve = pageHandler(js);
  const server = createServer((req, res) => {
    if (!serve(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Chromium with a throwaway profile and one open page. */
export async function launchChromium(): Promise<{
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}> {
  const profile = await tempDir('mediary-chromium-');
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
