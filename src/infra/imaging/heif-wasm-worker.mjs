/**
 * Worker thread of the WebAssembly HEIC decoder (heif-wasm.ts): decodes the primary image of one
 * HEIF file with libheif-js to RGBA and reads its Exif block, then posts both back. The thread
 * lives for one decode; the parent terminates it on cancel or timeout, which stops the wasm.
 *
 * Plain JavaScript on purpose: a worker thread does not inherit the tsx loader, and registering
 * tsx in each thread costs seconds (it starts an esbuild service). Message shapes: WasmDecodeRequest
 * in, WasmDecodeReply out (heif-wasm.ts).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

// libheif-js reports failures with console.log: keep the last line as the reason, print nothing.
let lastMessage = '';
console.log = (...args) => {
  lastMessage = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
};

function load() {
  const require = createRequire(import.meta.url);
  const dir = path.join(path.dirname(require.resolve('libheif-js/package.json')), 'libheif-wasm');
  const factory = require(path.join(dir, 'libheif.js'));
  return factory({ wasmBinary: readFileSync(path.join(dir, 'libheif.wasm')) });
}

/**
 * The raw Exif block of an image (TIFF header first), as libheif stores it; null if none. The
 * image's handle is an embind object whose raw `heif_image_handle*` is `$$.ptr`.
 */
function exifOf(lib, image) {
  const handle = image.handle?.$$?.ptr;
  if (typeof handle !== 'number') return null;
  const filter = lib._malloc(5);
  lib.HEAPU8.set([0x45, 0x78, 0x69, 0x66, 0], filter); // "Exif"
  try {
    const n = lib._heif_image_handle_get_number_of_metadata_blocks(handle, filter);
    if (n < 1) return null;
    const ids = lib._malloc(4 * n);
    try {
      lib._heif_image_handle_get_list_of_metadata_block_IDs(handle, filter, ids, n);
      const id = lib.HEAPU32[ids >> 2];
      const size = lib._heif_image_handle_get_metadata_size(handle, id);
      if (size <= 4 || size > 1024 * 1024) return null;
      const out = lib._malloc(size);
      const err = lib._malloc(16);
      try {
        lib._heif_image_handle_get_metadata(err, handle, id, out);
        if (lib.HEAP32[err >> 2] !== 0) return null;
        const block = lib.HEAPU8.slice(out, out + size);
        // HEIF's Exif item starts with the offset (big endian) of the TIFF header after it.
        const skip = 4 + new DataView(block.buffer).getUint32(0);
        return skip < size ? block.subarray(skip) : null;
      } finally {
        lib._free(out);
        lib._free(err);
      }
    } finally {
      lib._free(ids);
    }
  } finally {
    lib._free(filter);
  }
}

async function decode({ input, maxPixels }) {
  const lib = load();
  const images = new lib.HeifDecoder().decode(input);
  const primary = images.find((i) => i.is_primary()) ?? images[0];
  if (!primary) return { ok: false, reason: lastMessage || 'no image in the file' };
  // The size as displayed (transforms applied), checked before any pixel is decoded.
  const width = primary.get_width();
  const height = primary.get_height();
  if (!(width > 0 && height > 0) || width * height > maxPixels) {
    return { ok: false, reason: `${width}×${height} is over the pixel limit` };
  }
  const target = { data: new Uint8ClampedArray(width * height * 4), width, height };
  const decoded = await new Promise((resolve) => primary.display(target, resolve));
  if (!decoded) return { ok: false, reason: lastMessage || 'the bitstream does not decode' };
  let exif = null;
  try {
    exif = exifOf(lib, primary);
  } catch {
    exif = null;
  }
  const rgba = new Uint8Array(target.data.buffer, target.data.byteOffset, target.data.byteLength);
  return { ok: true, width, height, rgba, exif };
}

decode(workerData).then(
  (reply) => parentPort.postMessage(reply, reply.ok ? [reply.rgba.buffer] : []),
  (err) => parentPort.postMessage({ ok: false, reason: err instanceof Error ? err.message : String(err) }),
);
