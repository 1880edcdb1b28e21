/**
 * `mediary/client` for browsers (and any runtime with fetch and Blob): no Node built-ins here.
 * Node gets `mediary/client/node`, which adds paths, streams, a file state store and node:http.
 */
import { createSHA256 } from 'hash-wasm';
import { blobSource, type ByteSource, type Sha256Factory } from './source.ts';
import { IndexedDBStateStore, MemoryStateStore } from './state.ts';
import { browserTransport } from './transport.ts';
import { PauseGate } from './pause.ts';
import { runUpload, withControls, type Platform, type UploadOptions, type UploadTask } from './upload.ts';

export * from './common.ts';

/** SHA-256 in WebAssembly: WebCrypto cannot hash incrementally, and files can be gigabytes. */
export const wasmSha256: Sha256Factory = async () => {
  const h = await createSHA256();
  h.init();
  return { update: (chunk) => void h.update(chunk), digest: () => h.digest('hex') };
};

export const browserPlatform: Platform = {
  transport: browserTransport,
  sha256: wasmSha256,
  defaultStateStore: () =>
    IndexedDBStateStore.available() ? new IndexedDBStateStore() : new MemoryStateStore(),
};

const isByteSource = (x: unknown): x is ByteSource =>
  typeof x === 'object' && x !== null && 'stream' in x && 'size' in x && !(x instanceof Blob);

/**
 * Uploads a File/Blob: hash, session, single PUT or parallel parts, complete, optional wait.
 * The returned promise also has `pause()` and `resume()`.
 */
export function uploadFile(input: Blob | ByteSource, options: UploadOptions): UploadTask {
  const source = isByteSource(input) ? input : blobSource(input, options.fileName);
  const gate = new PauseGate();
  return withControls(runUpload(source, options, browserPlatform, gate), gate);
}
