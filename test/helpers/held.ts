import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Starts a request with `body` but holds its last byte back until `release()`, which sends it and
 * resolves with the answer. By the time this resolves, the server has had the request (and is
 * streaming its body) for a moment: what a route checks up front was checked before what the test
 * does next.
 */
export async function heldRequest(
  url: string,
  init: { method: string; headers: Record<string, string>; body: Buffer },
): Promise<{ release(): Promise<{ status: number; text: string }> }> {
  const { body } = init;
  let held: () => void = () => undefined;
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(url, {
      method: init.method,
      headers: { ...init.headers, 'content-length': String(body.length) },
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.write(body.subarray(0, body.length - 1));
    held = () => req.end(body.subarray(body.length - 1));
  });
  await sleep(300);
  return {
    release: () => {
      held();
      return answer;
    },
  };
}
