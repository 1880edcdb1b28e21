/**
 * Bundle budget of the components: `<mediary-uploader>` (with Lit) gzipped stays under 25 KB on
 * top of the SDK it is built on, and the web-component entry never pulls in React (the bindings
 * are a separate entry) nor hls.js (the video element loads it on demand).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUDGET = 25 * 1024;

async function bundle(entry: string) {
  const r = await build({
    absWorkingDir: ROOT,
    stdin: { contents: `export * from './${entry}';`, resolveDir: ROOT, loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const out = r.outputFiles[0]!;
  return { gzip: gzipSync(out.contents, { level: 9 }).length, inputs: Object.keys(r.metafile.inputs) };
}

test('the uploader component is under 25 KB gzipped on top of the SDK', async () => {
  const sdk = await bundle('src/client/index.ts');
  const uploader = await bundle('src/web/elements/uploader.ts');
  const own = uploader.gzip - sdk.gzip;
  console.log(
    `SDK ${sdk.gzip} B gzipped; uploader + SDK ${uploader.gzip} B; uploader alone ${own} B (budget ${BUDGET})`,
  );
  assert.ok(
    uploader.inputs.some((i) => i.includes('node_modules/lit')),
    'Lit is in the measured bundle',
  );
  assert.ok(own > 0 && own < BUDGET, `uploader adds ${own} B gzipped`);
});

test('the web components do not pull in React', async () => {
  const elements = await bundle('src/web/elements/index.ts');
  assert.deepEqual(
    elements.inputs.filter((i) => /node_modules\/(react|react-dom|scheduler)\//.test(i)),
    [],
  );
});

test('the web components load hls.js only on demand, outside the entry', async () => {
  // hls.js is a dynamic import of <mediary-video>: a separate chunk, not in the entry.
  const r = await build({
    absWorkingDir: ROOT,
    entryPoints: ['src/web/elements/index.ts'],
    bundle: true,
    splitting: true,
    format: 'esm',
    outdir: '/tmp/unused',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const entry = Object.values(r.metafile.outputs).find((o) => o.entryPoint === 'src/web/elements/index.ts')!;
  assert.equal(Object.keys(entry.inputs).filter((i) => i.includes('node_modules/hls.js')).length, 0);
});

test('the React bindings do pull in React', async () => {
  const react = await bundle('src/web/react/index.ts');
  assert.ok(react.inputs.some((i) => /node_modules\/react\//.test(i)));
});
