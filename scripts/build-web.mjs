/**
 * Builds the web side (run by `npm run build:client`, so by `npm ci` and before `npm pack`):
 *  - dist/web/lib/: the web components (`mediary/web`, one module per element) and the React
 *    bindings (`mediary/react`) as ES modules; lit, hls.js, thumbhash and react stay imports
 *    (the app's bundler dedupes them), the SDK is imported as `mediary/client`.
 *  - dist/web/app/: the app `mediary serve` serves at `/`: content-hashed, minified assets
 *    under assets/ and an index.html that names them.
 * `node scripts/build-web.mjs [OUT_DIR]` builds the app only into OUT_DIR (the browser tests).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB = path.join(ROOT, 'src/web');

/** The SDK stays the package's own `mediary/client` entry instead of being copied into each module. */
const sdkExternal = {
  name: 'sdk-external',
  setup(b) {
    b.onResolve({ filter: /\/client\/index\.ts$/ }, () => ({ path: 'mediary/client', external: true }));
  },
};

export async function buildLibrary(outdir = path.join(ROOT, 'dist/web/lib')) {
  await rm(outdir, { recursive: true, force: true });
  await build({
    absWorkingDir: ROOT,
    entryPoints: {
      'elements/index': 'src/web/elements/index.ts',
      'elements/uploader': 'src/web/elements/uploader.ts',
      'elements/image': 'src/web/elements/image.ts',
      'elements/video': 'src/web/elements/video.ts',
      'elements/preview': 'src/web/elements/preview.ts',
      'react/index': 'src/web/react/index.ts',
    },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir,
    external: ['lit', 'lit/*', 'hls.js', 'hls.js/*', 'thumbhash', 'react', 'react/*'],
    plugins: [sdkExternal],
    logLevel: 'warning',
  });
}

export async function buildApp(outdir = path.join(ROOT, 'dist/web/app')) {
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { app: 'src/web/app/main.ts' },
    bundle: true,
    splitting: true,
    minify: true,
    sourcemap: 'linked',
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: path.join(outdir, 'assets'),
    entryNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.entries(result.metafile.outputs);
  const entry = outputs.find(([, o]) => o.entryPoint === 'src/web/app/main.ts');
  if (!entry) throw new Error('the app bundle has no entry output');
  const js = path.basename(entry[0]);
  const css = entry[1].cssBundle ? path.basename(entry[1].cssBundle) : undefined;
  const template = await readFile(path.join(WEB, 'app/index.html'), 'utf8');
  const html = template
    .replace('<!--styles-->', css ? `<link rel="stylesheet" href="/assets/${css}" />` : '')
    .replace('<!--script-->', `<script type="module" src="/assets/${js}"></script>`);
  await mkdir(outdir, { recursive: true });
  await writeFile(path.join(outdir, 'index.html'), html);
  await writeFile(
    path.join(outdir, 'assets', 'favicon.svg'),
    await readFile(path.join(WEB, 'app/favicon.svg')),
  );
  return { outdir, js, css };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (out) await buildApp(path.resolve(out));
  else await Promise.all([buildLibrary(), buildApp()]);
}
