/**
 * The comparison: a tus server (@tus/server + @tus/file-store, their defaults) on the same
 * machine. `tus.ts PORT DIR`.
 */
import http from 'node:http';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const [port, dir] = [Number(process.argv[2]), process.argv[3]!];
const tus = new Server({ path: '/files', datastore: new FileStore({ directory: dir }) });
const server = http.createServer((req, res) => {
  void tus.handle(req, res);
});
server.listen(port, '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
