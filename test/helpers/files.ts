import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Real camera images (test/fixtures/images; licence and attribution in SOURCE.md there). */
export const FIXTURES = path.resolve(here, '../fixtures/images');

export const fixture = (rel: string) => readFileSync(path.join(FIXTURES, rel));
export const sha256 = (buf: Buffer | Uint8Array) => createHash('sha256').update(buf).digest('hex');
