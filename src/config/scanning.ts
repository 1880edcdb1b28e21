import { ConfigError, MiB, int, str, type Env } from './env.ts';

/**
 * ClamAV's daemon scans every original (INSTREAM over its socket) before the job makes variants;
 * `off`: nothing is scanned. See README "Malware scanning" and docs/RUNBOOKS/MALWARE.md.
 */
export type MalwareScanConfig =
  | { kind: 'off' }
  | {
      kind: 'clamd';
      /** clamd's `LocalSocket`, or its `TCPSocket` (+ `TCPAddr`). */
      address: { socket: string } | { host: string; port: number };
      /** One scan (connect + stream + verdict); past it the attempt fails and is retried. */
      timeoutMs: number;
      /** Larger originals are not sent (FAILED `too_large_to_scan`); keep ≤ clamd's `StreamMaxLength`. */
      maxBytes: number;
    };

/** MALWARE_SCAN, CLAMD_*, MALWARE_SCAN_*; the scan's timeout must fit in PROCESSING_JOB_TIMEOUT_SECONDS. */
export function malwareScanConfig(env: Env): MalwareScanConfig {
  const kind = str(env, 'MALWARE_SCAN') ?? 'off';
  if (kind === 'off') return { kind };
  if (kind !== 'clamd') throw new ConfigError('MALWARE_SCAN', `must be "off" or "clamd", got "${kind}"`);
  const socket = str(env, 'CLAMD_SOCKET');
  const host = str(env, 'CLAMD_HOST');
  if (socket !== undefined && host !== undefined) {
    throw new ConfigError('CLAMD_SOCKET', 'and CLAMD_HOST are both set; give one');
  }
  if (socket === undefined && host === undefined) {
    throw new ConfigError('CLAMD_SOCKET', 'or CLAMD_HOST is required when MALWARE_SCAN=clamd');
  }
  const timeoutSeconds = int(env, 'MALWARE_SCAN_TIMEOUT_SECONDS', 60, 1, 24 * 3600);
  const jobTimeout = int(env, 'PROCESSING_JOB_TIMEOUT_SECONDS', 300, 5, 24 * 3600);
  if (timeoutSeconds >= jobTimeout) {
    throw new ConfigError(
      'MALWARE_SCAN_TIMEOUT_SECONDS',
      `must be below PROCESSING_JOB_TIMEOUT_SECONDS (${jobTimeout}): the scan runs inside the job`,
    );
  }
  return {
    kind,
    address:
      socket !== undefined ? { socket } : { host: host!, port: int(env, 'CLAMD_PORT', 3310, 1, 65535) },
    timeoutMs: timeoutSeconds * 1000,
    // clamd's own default StreamMaxLength is 25 MiB; it refuses a longer stream.
    maxBytes: int(env, 'MALWARE_SCAN_MAX_BYTES', 25 * MiB, 1, 4 * 1024 * MiB - 1),
  };
}
