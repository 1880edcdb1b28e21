/**
 * The SDK's types cannot drift from the server's: test/client/types/sdk-contract.ts states, for
 * every wire type the SDK exports and every method's request and answer, that it is exactly the
 * `Static` type of the contract schema the server declares. tsc checks it (here, and in lint);
 * a drifted type — the SDK's old hand-written record, which lacked `variants`, `placeholder`,
 * `hls`, `gps` and `sha256Verified` — fails the same check. (That real answers match those
 * schemas: test/core/openapi-contract.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
const ASSERTIONS = path.join(ROOT, 'test/client/types/sdk-contract.ts');
let dir: string;
/** tsc's diagnostics over the assertions and a drifted copy, in one run (tsc takes seconds). */
let diagnostics: string[];

before(async () => {
  await mkdir(path.join(ROOT, '.tmp'), { recursive: true });
  dir = await mkdtemp(path.join(ROOT, '.tmp', 'sdk-types-'));
  const drifted = path.join(dir, 'drifted.ts');
  const rel = (p: string) => path.relative(dir, path.join(ROOT, p)).split(path.sep).join('/');
  await writeFile(
    drifted,
    `import type * as C from '${rel('src/contract/index.ts')}';
import type { MediaView } from '${rel('src/client/index.ts')}';
import type { Is } from '${rel('test/client/types/sdk-contract.ts')}';
type Drifted = Omit<MediaView, 'variants' | 'placeholder' | 'hls' | 'gps' | 'sha256Verified'>;
export const drifted = true as const satisfies Is<Drifted, typeof C.MediaView>;
`,
  );
  // The project's compiler options, over these two files only.
  const project = path.join(dir, 'tsconfig.json');
  await writeFile(
    project,
    JSON.stringify({ extends: path.join(ROOT, 'tsconfig.json'), include: [], files: [ASSERTIONS, drifted] }),
  );
  const out = await run(process.execPath, [TSC, '-p', project, '--pretty', 'false'], { cwd: ROOT }).then(
    (r) => r.stdout,
    (err: { stdout?: string; message: string }) => err.stdout ?? err.message,
  );
  diagnostics = out.split('\n').filter((l) => /error TS\d+/.test(l));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the SDK’s wire types', () => {
  test('are exactly the contract’s Static types (tsc over the type-level assertions)', () => {
    // Every error is the drifted copy's: none in the assertions (nor a tsc that could not run).
    assert.deepEqual(
      diagnostics.filter((d) => !d.includes('drifted.ts')),
      [],
    );
  });

  test('the check can fail: a hand-written record without the newer fields is refused', () => {
    assert.ok(
      diagnostics.some((d) => /drifted\.ts\(5,\d+\): error TS\d+/.test(d)),
      diagnostics.join('\n'),
    );
  });
});
