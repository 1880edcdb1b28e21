/**
 * Resumable upload state: which session a file belongs to and which parts are done. Kept in a
 * StateStore (Node: files; browser: IndexedDB) so a restarted client picks up where it stopped.
 */

export interface UploadState {
  version: 1;
  /** Idempotency key sent with session creation (users), fixed before the first attempt. */
  idempotencyKey: string;
  /** Message id sent with session creation (devices). */
  messageId?: string;
  sha256: string;
  bytes: number;
  fileName: string;
  mediaId?: string;
  partSize?: number;
  partCount?: number;
  /** ETags of parts this client saw stored (the server's listing is the authority on resume). */
  parts: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export interface StateStore {
  get(key: string): Promise<UploadState | undefined>;
  put(key: string, state: UploadState): Promise<void>;
  delete(key: string): Promise<void>;
}

export class MemoryStateStore implements StateStore {
  private readonly map = new Map<string, string>();
  async get(key: string) {
    const v = this.map.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as UploadState);
  }
  async put(key: string, state: UploadState) {
    this.map.set(key, JSON.stringify(state));
  }
  async delete(key: string) {
    this.map.delete(key);
  }
}

function promisify<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

/** Browser store: one IndexedDB object store, keyed by the upload's key. */
export class IndexedDBStateStore implements StateStore {
  private db: Promise<IDBDatabase> | undefined;

  constructor(
    private readonly dbName = 'mediary-uploads',
    private readonly factory: IDBFactory = globalThis.indexedDB,
  ) {}

  static available(): boolean {
    return typeof globalThis.indexedDB !== 'undefined';
  }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const req = this.factory.open(this.dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('uploads');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('cannot open IndexedDB'));
    });
    return this.db;
  }

  private async tx<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.open();
    return promisify(fn(db.transaction('uploads', mode).objectStore('uploads')));
  }

  async get(key: string) {
    return (await this.tx('readonly', (s) => s.get(key))) as UploadState | undefined;
  }
  async put(key: string, state: UploadState) {
    await this.tx('readwrite', (s) => s.put(state, key));
  }
  async delete(key: string) {
    await this.tx('readwrite', (s) => s.delete(key));
  }
}
