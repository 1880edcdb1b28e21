/**
 * Names for scratch files and directories (upload temp files, part temp files, video and HEIF work
 * directories) that say which process made them: host, pid and the pid's start time. A process
 * starting up can then remove what a dead process of this host left behind (killed mid-upload or
 * mid-job) at once, while the files of live processes sharing the directory (a `mediary worker`
 * beside `mediary serve`) are left alone. A pid reused by another process has another start time.
 * Files of other hosts (a store on shared storage) are never judged here: the age-based sweep
 * handles them.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const HOST = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);
/** `<host8>.<pid>.<start>.` — the prefix every scratch name of this process starts with. */
const TAG = /^([0-9a-f]{8})\.(\d+)\.(\d+)\./;

/** The kernel's start time of `pid` (clock ticks since boot), or undefined if it is not running. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) is in parentheses and may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

let own: string | undefined;

/** The prefix for a scratch name made by this process (`<prefix><tag><random>`). */
export function scratchTag(): string {
  own ??= `${HOST}.${process.pid}.${startTime(process.pid) ?? '0'}.`;
  return own;
}

/** True when `name` (after `prefix`) was made on this host by a process that is no longer running. */
export function isOrphaned(name: string, prefix = ''): boolean {
  if (!name.startsWith(prefix)) return false;
  const m = TAG.exec(name.slice(prefix.length));
  if (!m || m[1] !== HOST) return false;
  const pid = Number(m[2]);
  if (pid === process.pid) return false;
  const start = startTime(pid);
  return start === undefined || start !== m[3];
}

/** Removes the entries of `dir` (files or whole directories) that {@link isOrphaned} names. */
export async function removeOrphans(dir: string, prefix = ''): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!isOrphaned(name, prefix)) continue;
    await rm(path.join(dir, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}
