/**
 * A real ClamAV daemon for the scan tests (Debian `clamav-daemon`), with a signature database the
 * test makes itself: these machines cannot download ClamAV's. Its own config file (LocalSocket and
 * DatabaseDirectory in a temp dir, Foreground, no freshclam), stopped and started again at will.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClamdClient } from '../../src/infra/clamav.ts';

/**
 * The standard EICAR anti-virus test file (eicar.org), from its well-known text: harmless, and
 * detected by every scanner that is given a signature for it.
 */
export const EICAR = Buffer.from(
  'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*',
  'latin1',
);
/** The name our signature reports (clamd adds `.UNOFFICIAL` to signatures of its own databases). */
export const SIGNATURE = 'Mediary.Test.EICAR';

export interface Clamd {
  socket: string;
  tcpPort: number;
  /** Milliseconds from spawn to the first PONG, per start. */
  startups: number[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * clamd in `dir` with an extended (body) signature of the EICAR string (`.ndb`, target any file
 * type, anywhere in the file): a JPEG that carries it is caught, as clamd would catch the real
 * EICAR signature in any file.
 */
export async function makeClamd(
  dir: string,
  opts: { tcpPort: number; streamMaxBytes: number; maxFileBytes: number },
): Promise<Clamd> {
  const db = path.join(dir, 'db');
  await mkdir(db, { recursive: true });
  await writeFile(path.join(db, 'mediary-test.ndb'), `${SIGNATURE}:0:*:${EICAR.toString('hex')}\n`);
  const socket = path.join(dir, 'clamd.sock');
  const conf = path.join(dir, 'clamd.conf');
  await writeFile(
    conf,
    [
      `LocalSocket ${socket}`,
      `TCPSocket ${opts.tcpPort}`,
      'TCPAddr 127.0.0.1',
      `DatabaseDirectory ${db}`,
      `TemporaryDirectory ${dir}`,
      `PidFile ${path.join(dir, 'clamd.pid')}`,
      `StreamMaxLength ${opts.streamMaxBytes}`,
      // Files over MaxFileSize are reported (not silently passed) as Heuristics.Limits.Exceeded.*.
      `MaxFileSize ${opts.maxFileBytes}`,
      'AlertExceedsMax yes',
      'Foreground yes',
      'LogTime yes',
      '',
    ].join('\n'),
  );
  const log = createWriteStream(path.join(dir, 'clamd.log'), { flags: 'a' });
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  const ping = new ClamdClient({ address: { socket }, timeoutMs: 1000 });
  const clamd: Clamd = {
    socket,
    tcpPort: opts.tcpPort,
    startups: [],
    async start() {
      const started = Date.now();
      const c = spawn('clamd', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      c.stdout.pipe(log, { end: false });
      c.stderr.pipe(log, { end: false });
      exited = new Promise((resolve) => c.once('exit', () => resolve()));
      let gone = false;
      void exited.then(() => (gone = true));
      for (;;) {
        if (await ping.ping()) break;
        if (gone) throw new Error(`clamd exited at start (see ${path.join(dir, 'clamd.log')})`);
        if (Date.now() - started > 30_000) throw new Error('clamd did not answer PING within 30 s');
        await sleep(20);
      }
      clamd.startups.push(Date.now() - started);
    },
    async stop() {
      if (!child || child.exitCode !== null) return;
      child.kill('SIGTERM');
      await exited;
      child = undefined;
    },
  };
  return clamd;
}
