/** A local HTTP server standing in for a CDN's purge API: records each purge, answers as told. */
import { createServer, type IncomingHttpHeaders } from 'node:http';

export interface PurgeCall {
  headers: IncomingHttpHeaders;
  files: string[];
}

export interface PurgeReceiver {
  url: string;
  calls: PurgeCall[];
  /** `ok` answers 200, `fail` 503, `hang` holds the answer until {@link release}. */
  mode: 'ok' | 'fail' | 'hang';
  /** Answers (200) every held request. */
  release(): void;
  /** Every file URL purged with a 2xx answer. */
  purged(): Set<string>;
  close(): Promise<void>;
}

export async function startPurgeReceiver(): Promise<PurgeReceiver> {
  const held: (() => void)[] = [];
  const accepted: string[] = [];
  const receiver: PurgeReceiver = {
    url: '',
    calls: [],
    mode: 'ok',
    release() {
      for (const answer of held.splice(0)) answer();
    },
    purged: () => new Set(accepted),
    close: () =>
      new Promise<void>((resolve) => {
        receiver.release();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const files = (JSON.parse(body) as { files: string[] }).files;
      receiver.calls.push({ headers: req.headers, files });
      const ok = () => {
        accepted.push(...files);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"success":true}');
      };
      if (receiver.mode === 'ok') ok();
      else if (receiver.mode === 'hang') held.push(ok);
      else res.writeHead(503).end('purge service unavailable');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  receiver.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/purge_cache`;
  return receiver;
}
