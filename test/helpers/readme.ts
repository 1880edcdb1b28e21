/**
 * The README's curl walk-through, taken from README.md as written, for the tests that run it
 * (test/core/readme.test.ts against a test server, test/deploy/compose.fault.ts against the Compose
 * stack), so a change to the README is a change to what they run.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');

/** The bash block of the section "Walk-through with curl". */
export function walkThrough(readme = readFileSync(README, 'utf8')): string {
  const section = readme.slice(readme.indexOf('## Walk-through with curl'));
  const block = /```bash\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the README has the walk-through block');
  return block[1]!;
}

/** The `mediary` command the walk-through's step 1 tells Compose users to set: MEDIARY='…'. */
export function composeMediaryCommand(block: string): string {
  const m = /MEDIARY='([^']+)'/.exec(block);
  assert.ok(m, 'the walk-through says how to run mediary against the Compose stack');
  return m[1]!;
}
