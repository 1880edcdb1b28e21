/**
 * Times every ObjectStore call and counts the ones that fail (the composition root wraps the
 * store once; nothing else changes). A Proxy, so the store keeps its class (`instanceof`), its
 * optional members (`presignPut`, `adoptFile`, `stagingDir` …) and its own methods (the local
 * store's temp-file sweeps) exactly as they were.
 */
import type { Readable } from 'node:stream';
import { AppError } from '../errors.ts';
import { ObjectExistsError, ObjectTooLargeError, type ObjectStore } from '../storage/types.ts';
import type { Metrics, StoreOperation, StoreOutcome } from './port.ts';

const PROMISED: ReadonlySet<string> = new Set<StoreOperation>([
  'put',
  'get',
  'readAll',
  'stat',
  'delete',
  'signedGetUrl',
  'presignPut',
  'adoptFile',
  'createMultipart',
  'presignPart',
  'putPart',
  'listParts',
  'completeMultipart',
  'abortMultipart',
  'setup',
]);
const ITERATED: ReadonlySet<string> = new Set<StoreOperation>(['listMultipartUploads', 'listObjects']);
/** Methods timed under another operation's name: a put of bytes in memory is a put. */
const ALIASES: Readonly<Record<string, StoreOperation>> = { putBuffer: 'put' };

/** Not the store's failure: the client's bytes (length, hash, an aborted body) or a create-only conflict. */
function outcomeOf(err: unknown, args: unknown[]): StoreOutcome {
  if (err instanceof ObjectExistsError || err instanceof ObjectTooLargeError) return 'rejected';
  if (err instanceof AppError && err.status < 500) return 'rejected';
  const body = args.find((a): a is Readable => typeof (a as Readable | null)?.pipe === 'function');
  if (body && (body.errored || body.readableAborted)) return 'rejected';
  return 'error';
}

export function instrumentStore<S extends ObjectStore>(store: S, metrics: Metrics): S {
  const backend = store.backend;
  const wrapped = new Map<string | symbol, unknown>();
  const timed = (op: StoreOperation, fn: (...a: unknown[]) => Promise<unknown>) =>
    async function (this: unknown, ...args: unknown[]) {
      const started = performance.now();
      try {
        const result = await fn.apply(store, args);
        metrics.storeOperation(backend, op, 'ok', (performance.now() - started) / 1000);
        return result;
      } catch (err) {
        metrics.storeOperation(backend, op, outcomeOf(err, args), (performance.now() - started) / 1000);
        throw err;
      }
    };
  const iterated = (op: StoreOperation, fn: (...a: unknown[]) => AsyncIterable<unknown>) =>
    async function* (this: unknown, ...args: unknown[]) {
      const started = performance.now();
      let outcome: StoreOutcome = 'error';
      try {
        yield* fn.apply(store, args);
        outcome = 'ok';
      } finally {
        metrics.storeOperation(backend, op, outcome, (performance.now() - started) / 1000);
      }
    };
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      let fn = wrapped.get(prop);
      if (fn === undefined) {
        const method = value as (...a: unknown[]) => never;
        const op = ALIASES[prop] ?? prop;
        if (PROMISED.has(op)) fn = timed(op as StoreOperation, method);
        else if (ITERATED.has(prop)) fn = iterated(prop as StoreOperation, method);
        else fn = method.bind(target);
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}
