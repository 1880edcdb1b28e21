#!/usr/bin/env node
// The `mediary` command. Runs the compiled JavaScript in lib/ (built by `npm run build:server`,
// which `npm ci` and `npm pack` run) when it is there. In a checkout (src/ present) a build older
// than any file under src/ is ignored, so an edit is never shadowed by a stale build; then — or
// without a build — the TypeScript sources run through tsx (a development dependency).
import { existsSync, readdirSync, statSync } from 'node:fs';

const stamp = new URL('../lib/.build-stamp', import.meta.url);
const srcDir = new URL('../src/', import.meta.url);

/** Whether any file or directory under src/ changed after the build (a checkout only). */
function sourcesNewerThan(builtAt) {
  if (!existsSync(srcDir)) return false;
  for (const entry of readdirSync(srcDir, { recursive: true, withFileTypes: true })) {
    if (statSync(`${entry.parentPath}/${entry.name}`).mtimeMs > builtAt) return true;
  }
  return statSync(srcDir).mtimeMs > builtAt;
}

if (existsSync(stamp) && !sourcesNewerThan(statSync(stamp).mtimeMs)) {
  await import('../lib/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
