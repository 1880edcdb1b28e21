/** A minimal `text/event-stream` reader over fetch, for tests (records every message it parses). */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: any;
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** Error body for a non-200 answer. */
  body: any;
  messages: SseMessage[];
  /** Resolves with the first message (from the start) that `pred` accepts. */
  until(pred: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const halt = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: halt.signal });
  const messages: SseMessage[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  if (res.status !== 200) {
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: text ? JSON.parse(text) : undefined,
      messages,
      until: () => Promise.reject(new Error(`stream answered ${res.status}`)),
      close: () => undefined,
    };
  }
  void (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let id: string | undefined;
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const [field, ...rest] = line.split(':');
            const value = rest.join(':').replace(/^ /, '');
            if (field === 'id') id = value;
            else if (field === 'event') event = value;
            else if (field === 'data') data.push(value);
          }
          if (data.length > 0) messages.push({ id, event, data: JSON.parse(data.join('\n')) });
          for (const w of waiters) w();
        }
      }
    } catch {
      // aborted
    } finally {
      ended = true;
      for (const w of waiters) w();
    }
  })();
  return {
    status: res.status,
    headers: res.headers,
    body: undefined,
    messages,
    until(pred, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = messages.find(pred);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
          } else if (ended) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`stream ended; got ${messages.map((x) => x.event).join(', ')}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `no such message within ${timeoutMs} ms; got ${messages.map((x) => x.event).join(', ')}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => halt.abort(),
  };
}
