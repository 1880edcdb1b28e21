/**
 * The baseline for a durable upload (bench:curl): the least a Node HTTP server must do to accept a
 * file durably — a new file (O_EXCL), sha256 on the fly, fsync of the file and of its directory —
 * and nothing else. `durable-sink.ts PORT DIR`; answers `{file, bytes, sha256}`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const [port, dir] = [Number(process.argv[2]), process.argv[3]!];

async function fsync(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const server = http.createServer((req, res) => {
  void (async () => {
    const file = path.join(dir, randomUUID());
    const hash = createHash('sha256');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(req, meter, createWriteStream(file, { flags: 'wx' }));
    await fsync(file);
    await fsync(dir);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ file, bytes, sha256: hash.digest('hex') }));
  })().catch((err: unknown) => {
    res.writeHead(500);
    res.end(String(err));
  });
});
server.listen(port, '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
