import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The shared camera fixtures (`../shared/fixtures/images` beside the repository). */
export const FIXTURES = path.resolve(here, '../../../shared/fixtures/images');

export const fixture = (rel: string) => readFileSync(path.join(FIXTURES, rel));
export const sha256 = (buf: Buffer | Uint8Array) => createHash('sha256').update(buf).digest('hex');
