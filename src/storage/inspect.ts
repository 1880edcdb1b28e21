import { createHash } from 'node:crypto';
import { fileTypeFromBuffer } from 'file-type';
import type { ObjectStore } from './types.ts';

/** Bytes `file-type` needs to recognise every format on the allow-list. */
export const SNIFF_BYTES = 4100;

/** SHA-256 of a stored object, streamed; undefined when the object does not exist. */
export async function hashStoredObject(store: ObjectStore, key: string): Promise<string | undefined> {
  const stream = await store.get(key);
  if (!stream) return undefined;
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The MIME type sniffed from an object's first bytes, if recognised. */
export async function sniffStoredType(store: ObjectStore, key: string): Promise<string | undefined> {
  const stream = await store.get(key, { start: 0, end: SNIFF_BYTES - 1 });
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return (await fileTypeFromBuffer(Buffer.concat(chunks)))?.mime;
}
