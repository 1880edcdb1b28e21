/** Shared bits of the client commands: connection flags, usage errors, human-readable sizes. */
import { readFileSync } from 'node:fs';
import { MediaryClient } from '../client/node.ts';

export class UsageError extends Error {}

export const connectionOptions = {
  server: { type: 'string' },
  key: { type: 'string' },
  'key-file': { type: 'string' },
} as const;

export function clientFrom(
  values: { server?: string; key?: string; 'key-file'?: string },
  env = process.env,
): MediaryClient {
  const server = values.server ?? env.MEDIARY_SERVER;
  const keyFile = values['key-file'] ?? env.MEDIARY_KEY_FILE;
  const key = values.key ?? env.MEDIARY_KEY ?? (keyFile ? readKeyFile(keyFile) : undefined);
  if (!server) throw new UsageError('no server: pass --server URL or set MEDIARY_SERVER');
  if (!key) throw new UsageError('no key: pass --key KEY, --key-file PATH, or set MEDIARY_KEY');
  try {
    new URL(server);
  } catch {
    throw new UsageError(`--server must be a URL, got "${server}"`);
  }
  return new MediaryClient({ server, key });
}

/** The key in a file written by `mediary claim` (trailing whitespace ignored). */
function readKeyFile(file: string): string {
  try {
    const key = readFileSync(file, 'utf8').trim();
    if (!key) throw new UsageError(`the key file ${file} is empty`);
    return key;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read the key file ${file}: ${(err as Error).message}`);
  }
}

export function positiveInt(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new UsageError(`${name} must be a whole number ≥ 1`);
  return Number(raw);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
export function formatBytes(n: number): string {
  let v = n;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${UNITS[i]}`;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const pad = (x: number) => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m % 60)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** Parses `10s`, `500ms`, `2m`, `1h` or plain seconds into milliseconds. */
export function parseInterval(raw: string, name = '--interval'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new UsageError(`${name} must look like 10s, 500ms, 2m or 1h; got "${raw}"`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  if (ms < 10) throw new UsageError(`${name} must be at least 10ms`);
  return Math.round(ms);
}

/** Parses `500MiB`, `2GiB`, `1000000` (bytes). */
export function parseSize(raw: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|K|M|G|T)?$/i.exec(raw.trim());
  if (!m) throw new UsageError(`${name} must look like 500MiB or 2GiB; got "${raw}"`);
  const unit = (m[2] ?? 'B').toUpperCase()[0]!;
  const pow = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit] ?? 0;
  return Math.round(Number(m[1]) * 1024 ** pow);
}
