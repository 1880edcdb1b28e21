/**
 * The web app in Chromium: build it into a temp folder (the server serves it from WEB_DIR), sign
 * in, drop files on the uploader, run axe-core, save screenshots at desktop and phone widths.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { tempDir } from './server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SCREENSHOTS = path.join(ROOT, 'test-results/screenshots');

/** `node scripts/build-web.mjs DIR`: the same build `npm ci` runs, into a folder of this test's own. */
export async function buildWebApp(): Promise<string> {
  const dir = await tempDir('mediary-web-');
  await new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'scripts/build-web.mjs'), dir], { stdio: 'inherit' });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`build-web exited ${code}`))));
  });
  return dir;
}

export async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Upload' }).waitFor();
}

/**
 * Drops files on `<mediary-uploader>` as a person would (a `drop` event whose DataTransfer holds
 * them). The files reach the page through a scratch input (playwright hands the bytes over by path).
 */
export async function dropFiles(page: Page, files: string[]): Promise<void> {
  await page.evaluate(() => {
    if (document.getElementById('test-files')) return;
    const input = document.createElement('input');
    input.type = 'file';
    input.multiple = true;
    input.id = 'test-files';
    input.hidden = true;
    document.body.append(input);
  });
  await page.setInputFiles('#test-files', files);
  await page.evaluate(() => {
    const input = document.getElementById('test-files') as HTMLInputElement;
    const dt = new DataTransfer();
    for (const f of Array.from(input.files ?? [])) dt.items.add(f);
    const target = document.querySelector('mediary-uploader')!;
    target.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
    target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    input.value = '';
  });
}

let axeSource: string | undefined;

/** axe-core on the current page: no serious or critical violations. */
export async function assertAccessible(page: Page, what: string): Promise<void> {
  axeSource ??= await readFile(path.join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol: the app's CSP allows no inline script, rightly.
  await page.evaluate(`${axeSource}\n;0`);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as any).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
      .map(
        (v: any) =>
          `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n: any) => n.target.join(' ')).join(', ')}`,
      );
  });
  assert.deepEqual(violations, [], `${what}: accessibility violations`);
}

/** The page at 1280×800 and at 390×844 (a phone), saved under test-results/screenshots/. */
export async function screenshots(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  for (const [label, size] of [
    ['desktop', { width: 1280, height: 800 }],
    ['phone', { width: 390, height: 844 }],
  ] as const) {
    await page.setViewportSize(size);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}
