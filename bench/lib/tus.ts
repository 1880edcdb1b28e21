/**
 * The comparison: a tus server (@tus/server + @tus/file-store, their defaults) on the same
 * machine. `tus.ts PORT DIR [durable]`: with `durable`, each PATCH's bytes are fsynced before it
 * is answered (what Mediary promises for every offset it reports), the same durability as ours
 * without our hashing, checks and database.
 */
import { open } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

class DurableFileStore extends FileStore {
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const end = await super.write(readable, id, offset);
    const fh = await open(path.join(this.directory, id), 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    return end;
  }
}

const [port, dir, mode] = [Number(process.argv[2]), process.argv[3]!, process.argv[4]];
const datastore = mode === 'durable' ? new DurableFileStore({ directory: dir }) : new FileStore({ directory: dir });
const tus = new Server({ path: '/files', datastore });
const server = http.createServer((req, res) => {
  void tus.handle(req, res);
});
server.listen(port, '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
