/**
 * The browser entry bundles for the browser with no Node built-ins, and the published build
 * (tsc → dist/client) emits JavaScript with type declarations for every export path.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { tempDir } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const NODE_BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

async function bundleForBrowser(entry: string) {
  return build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    absWorkingDir: ROOT,
    // A build emitted outside the repository still resolves the package's dependencies.
    nodePaths: [path.join(ROOT, 'node_modules')],
  });
}

function assertNoNodeBuiltins(result: Awaited<ReturnType<typeof bundleForBrowser>>) {
  const imports = Object.values(result.metafile.inputs).flatMap((i) => i.imports.map((x) => x.path));
  const offenders = imports.filter((p) => NODE_BUILTINS.has(p));
  assert.deepEqual(offenders, [], 'no Node built-in is imported');
  const code = result.outputFiles[0]!.text;
  assert.doesNotMatch(code, /from\s*["']node:|require\(["']node:|import\(["']node:/);
  assert.match(code, /sha256|SHA256/i, 'the WASM hasher is in the bundle');
}

/** The SDK takes only types from the contract: no TypeBox and no schema object in a bundle. */
function assertNoSchemas(result: Awaited<ReturnType<typeof bundleForBrowser>>) {
  const inputs = Object.keys(result.metafile.inputs);
  assert.deepEqual(
    inputs.filter((p) => p.includes('@sinclair/typebox') || p.includes('contract/')),
    [],
    'no TypeBox or contract module is bundled',
  );
  assert.doesNotMatch(result.outputFiles[0]!.text, /TypeBox|\[Kind\]|Symbol\.for\("TypeBox/);
}

describe('the browser build', () => {
  test('src/client/index.ts bundles for the browser without Node built-ins', async () => {
    const result = await bundleForBrowser('src/client/index.ts');
    assert.equal(result.errors.length, 0);
    assertNoNodeBuiltins(result);
    assertNoSchemas(result);
  });

  test('the check can fail: the Node entry does not bundle for the browser', async () => {
    await assert.rejects(bundleForBrowser('src/client/node.ts'), /node:|Could not resolve/);
  });

  test('the check can fail: a module that uses the contract’s schemas at run time bundles TypeBox', async () => {
    const result = await bundleForBrowser('src/contract/index.ts');
    assert.throws(() => assertNoSchemas(result), /TypeBox|contract/);
  });

  describe('build:client', () => {
    let out: string;

    test('emits JavaScript and declarations for every export path', async () => {
      out = await tempDir('mediary-client-build-');
      dirs.push(out);
      await run(process.execPath, [
        path.join(ROOT, 'node_modules/typescript/bin/tsc'),
        '-p',
        path.join(ROOT, 'tsconfig.client.json'),
        '--outDir',
        out,
      ]);
      const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
      const targets = [
        pkg.exports['./client/browser'],
        pkg.exports['./client/node'],
        pkg.exports['./client'].node,
      ];
      for (const t of targets) {
        for (const f of [t.types, t.default]) {
          const emitted = path.join(out, path.relative('./dist', f));
          assert.ok(existsSync(emitted), `${f} is produced by the build`);
        }
      }
      const dts = readFileSync(path.join(out, 'client/index.d.ts'), 'utf8');
      assert.match(dts, /export declare function uploadFile/);
      assert.match(
        readFileSync(path.join(out, 'client/upload.d.ts'), 'utf8'),
        /onProgress\?: ProgressListener/,
      );
      // The wire types are the contract's, which the build emits beside the client.
      assert.match(readFileSync(path.join(out, 'client/types.d.ts'), 'utf8'), /Static<typeof C\.MediaView>/);
      assert.ok(existsSync(path.join(out, 'contract/index.d.ts')), 'the contract’s declarations are emitted');
    });

    test('the emitted browser entry bundles without Node built-ins or schemas', async () => {
      const result = await bundleForBrowser(path.join(out, 'client/index.js'));
      assertNoNodeBuiltins(result);
      assertNoSchemas(result);
    });
  });
});
