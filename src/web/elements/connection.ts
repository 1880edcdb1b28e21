/**
 * Where the elements find the server and the credential: their own `server` attribute and `token`
 * property, else the page-wide defaults set once with `configure()`. The token is never put in an
 * attribute or a URL: it lives in memory (and wherever the page keeps it).
 */
import { MediaryClient, type Credential } from '../../client/index.ts';

export interface Connection {
  /** Base URL of the Mediary server; default: the page's origin. */
  server?: string;
  /** A user JWT or a device key, or a function returning the current one. */
  token?: Credential;
}

let defaults: Connection = {};

/** Sets the page-wide server and token every Mediary element uses unless given its own. */
export function configure(connection: Connection): void {
  defaults = { ...defaults, ...connection };
}

export function resolveConnection(own: Connection): { server: string; token: Credential } | undefined {
  const token = own.token ?? defaults.token;
  if (token === undefined || token === '') return undefined;
  const server = own.server ?? defaults.server ?? globalThis.location?.origin ?? '';
  return { server, token };
}

const clients = new WeakMap<object, MediaryClient>();

/** One client per credential function or string (cached so elements share retries and keys). */
export function clientFor(own: Connection): MediaryClient | undefined {
  const c = resolveConnection(own);
  if (!c) return undefined;
  const key = typeof c.token === 'function' ? c.token : undefined;
  const cached = key ? clients.get(key) : undefined;
  if (cached && cached.server === c.server.replace(/\/+$/, '')) return cached;
  const client = new MediaryClient({ server: c.server, token: c.token });
  if (key) clients.set(key, client);
  return client;
}
