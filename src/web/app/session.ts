/**
 * The signed-in token: kept in sessionStorage (this tab only, gone when it closes) and memory,
 * never in a URL or a cookie. Every element and request asks `currentToken()`.
 */
import { MediaryClient, MediaryError } from '../../client/index.ts';
import { configure } from '../elements/connection.ts';

const KEY = 'mediary.token';
let token: string | undefined = sessionStorage.getItem(KEY) ?? undefined;

export const currentToken = (): string => {
  if (!token) throw new MediaryError(401, 'unauthorized', 'Not signed in.');
  return token;
};

configure({ server: location.origin, token: currentToken });

export const api = new MediaryClient({ server: location.origin, token: currentToken });

export const signedIn = () => token !== undefined;

/** Checks the token against the server, then keeps it. */
export async function signIn(candidate: string): Promise<void> {
  const probe = new MediaryClient({ server: location.origin, token: candidate, retry: { retries: 0 } });
  await probe.json('GET', '/users/me/usage');
  token = candidate;
  sessionStorage.setItem(KEY, candidate);
}

export function signOut(): void {
  token = undefined;
  sessionStorage.removeItem(KEY);
}

/** The user id the token names (`sub`), for display only (the server checks the token). */
export function userName(): string {
  try {
    const b64 = (token ?? '').split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(b64)) as { sub?: string };
    return claims.sub ?? 'you';
  } catch {
    return 'you';
  }
}

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
