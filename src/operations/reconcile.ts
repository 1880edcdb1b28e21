/**
 * `mediary storage reconcile`: the database and the store compared, object by object (issue 18).
 * Dry run by default; `apply` fixes what is safe to fix. Works on any store through
 * `ObjectStore.listObjects` (local, S3/Ceph, GCS). What it finds:
 *
 * | kind | what | with `apply` |
 * |---|---|---|
 * | `orphan` | an object no row references, older than the grace period | removed |
 * | `orphan-young` | the same, younger (an upload may be in flight) | counted only, never touched |
 * | `deleted-leftover` | an object only DELETED media reference (a variant of a deleted media) | removed |
 * | `missing-original` | a live (UPLOADED/PROCESSING/READY) media whose original is not in the store | FAILED `storage_missing` |
 * | `missing-derived` | a READY media's variant, poster or HLS object not in the store | reported (processing cannot be rerun from READY) |
 *
 * A row counts when any text column named `key` or `*_key` holds the key (as the sweeper reads
 * them). Media on another backend than the store (`storage_backend`) are skipped, and so is any
 * media changed after the listing began; a missing object is confirmed with a `stat` before it is
 * reported. Every key listed is held in memory (≈ 100 bytes per object) for the missing check.
 */
import type { Pool } from '../db/pool.ts';
import { markBytesLost } from '../media/transitions.ts';
import type { ObjectStore } from '../storage/types.ts';
import { keyColumns } from './sweeper.ts';

export type FindingKind =
  'orphan' | 'orphan-young' | 'deleted-leftover' | 'missing-original' | 'missing-derived';

export interface Finding {
  kind: FindingKind;
  key: string;
  mediaId?: string | undefined;
  status?: string | undefined;
  size?: number | undefined;
  lastModified?: Date | undefined;
  /** What was done (`apply`) or would be done (dry run). */
  action: string;
}

export interface ReconcileReport {
  apply: boolean;
  /** Objects listed in the store. */
  objects: number;
  /** Live media checked for their objects. */
  mediaChecked: number;
  counts: Record<FindingKind, number>;
  /** Every finding but `orphan-young` (only counted). */
  findings: Finding[];
  /** Fixes that failed (the finding stays; rerun). */
  errors: number;
}

export interface ReconcileOptions {
  apply: boolean;
  /** Unreferenced objects younger than this are left alone (uploads in flight). */
  graceSeconds: number;
  now?: Date;
  onFinding?: (f: Finding) => void;
}

const BATCH = 500;

export async function reconcile(
  pool: Pool,
  store: ObjectStore,
  opts: ReconcileOptions,
): Promise<ReconcileReport> {
  const startedAt = opts.now ?? new Date();
  const graceCutoff = new Date(startedAt.getTime() - opts.graceSeconds * 1000);
  const report: ReconcileReport = {
    apply: opts.apply,
    objects: 0,
    mediaChecked: 0,
    counts: {
      orphan: 0,
      'orphan-young': 0,
      'deleted-leftover': 0,
      'missing-original': 0,
      'missing-derived': 0,
    },
    findings: [],
    errors: 0,
  };
  const found = (f: Finding) => {
    report.counts[f.kind]++;
    if (f.kind === 'orphan-young') return;
    report.findings.push(f);
    opts.onFinding?.(f);
  };
  const fix = async (work: () => Promise<unknown>, done: string, wouldDo: string): Promise<string> => {
    if (!opts.apply) return wouldDo;
    try {
      await work();
      return done;
    } catch (err) {
      report.errors++;
      return `FAILED: ${err instanceof Error ? err.message : String(err)}`;
    }
  };

  // 1. Every object: referenced by a live row, only by DELETED media, or by nothing.
  const columns = await keyColumns(pool);
  const listed = new Set<string>();
  for await (const page of store.listObjects()) {
    const objects = page.filter((o) => o.key !== '');
    report.objects += objects.length;
    for (const o of objects) listed.add(o.key);
    const keys = objects.map((o) => o.key);
    const live = new Set<string>();
    const deleted = new Map<string, string>();
    for (const { table, column, mediaId } of columns) {
      const state =
        table === '"media"'
          ? `status = 'DELETED'`
          : mediaId
            ? `EXISTS (SELECT 1 FROM media m WHERE m.id = ${table}.media_id AND m.status = 'DELETED')`
            : 'false';
      const owner = table === '"media"' ? 'id' : mediaId ? 'media_id' : 'NULL';
      const { rows } = await pool.query<{ k: string; gone: boolean; media: string | null }>(
        `SELECT ${column} AS k, ${state} AS gone, ${owner}::text AS media FROM ${table} WHERE ${column} = ANY($1)`,
        [keys],
      );
      for (const r of rows) {
        if (r.gone) deleted.set(r.k, r.media ?? '');
        else live.add(r.k);
      }
    }
    for (const o of objects) {
      if (live.has(o.key)) continue;
      const base = { key: o.key, size: o.size, lastModified: o.lastModified };
      const deletedMedia = deleted.get(o.key);
      if (deletedMedia !== undefined) {
        const action = await fix(() => store.delete(o.key), 'removed', 'would remove');
        found({
          ...base,
          kind: 'deleted-leftover',
          mediaId: deletedMedia || undefined,
          status: 'DELETED',
          action,
        });
      } else if (o.lastModified > graceCutoff) {
        found({ ...base, kind: 'orphan-young', action: 'kept (within the grace period)' });
      } else {
        const action = await fix(() => store.delete(o.key), 'removed', 'would remove');
        found({ ...base, kind: 'orphan', action });
      }
    }
  }

  // 2. Every live media on this store, unchanged since the listing began: are its objects there?
  const derivedColumns = columns.filter((c) => c.mediaId && c.table !== '"media"');
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const { rows } = await pool.query<{ id: string; storage_key: string; status: string }>(
      `SELECT id, storage_key, status::text AS status FROM media
        WHERE id > $1 AND status IN ('UPLOADED', 'PROCESSING', 'READY')
          AND storage_backend = $2 AND updated_at < $3
        ORDER BY id LIMIT $4`,
      [after, store.backend, startedAt, BATCH],
    );
    if (rows.length === 0) break;
    after = rows[rows.length - 1]!.id;
    report.mediaChecked += rows.length;
    const ready = rows.filter((r) => r.status === 'READY').map((r) => r.id);
    const derived: { media: string; k: string }[] = [];
    for (const { table, column } of ready.length > 0 ? derivedColumns : []) {
      const { rows: d } = await pool.query<{ media: string; k: string }>(
        `SELECT media_id::text AS media, ${column} AS k FROM ${table} WHERE media_id = ANY($1::uuid[]) AND ${column} IS NOT NULL`,
        [ready],
      );
      derived.push(...d);
    }
    for (const m of rows) {
      if (listed.has(m.storage_key) || (await store.stat(m.storage_key))) continue;
      const action = await fix(
        async () => {
          if (!(await markBytesLost(pool, m.id))) throw new Error('the media changed meanwhile');
        },
        'marked FAILED (storage_missing)',
        'would mark FAILED (storage_missing)',
      );
      found({ kind: 'missing-original', key: m.storage_key, mediaId: m.id, status: m.status, action });
    }
    const statusOf = new Map(rows.map((r) => [r.id, r.status]));
    const seen = new Set<string>();
    for (const d of derived) {
      // Variant rows of one media may share a key (content-addressed: equal renditions).
      if (seen.has(`${d.media} ${d.k}`)) continue;
      seen.add(`${d.media} ${d.k}`);
      if (listed.has(d.k) || (await store.stat(d.k))) continue;
      found({
        kind: 'missing-derived',
        key: d.k,
        mediaId: d.media,
        status: statusOf.get(d.media),
        action: 'reported',
      });
    }
    if (rows.length < BATCH) break;
  }
  return report;
}

/** The report as a table for people (`storage reconcile` prints it). */
export function formatReport(report: ReconcileReport, now = new Date()): string {
  const age = (d: Date | undefined) => {
    if (!d) return '-';
    const s = Math.max(0, (now.getTime() - d.getTime()) / 1000);
    return s >= 86_400
      ? `${Math.floor(s / 86_400)}d`
      : s >= 3600
        ? `${Math.floor(s / 3600)}h`
        : `${Math.floor(s / 60)}m`;
  };
  const rows = [
    ['KIND', 'KEY', 'MEDIA', 'STATUS', 'BYTES', 'AGE', 'ACTION'],
    ...report.findings.map((f) => [
      f.kind,
      f.key,
      f.mediaId ?? '-',
      f.status ?? '-',
      f.size === undefined ? '-' : String(f.size),
      age(f.lastModified),
      f.action,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
  const c = report.counts;
  lines.push(
    '',
    `${report.apply ? '' : 'dry run (nothing changed; --apply to fix): '}${report.objects} objects, ` +
      `${report.mediaChecked} live media checked; ${c.orphan} orphan, ${c['orphan-young']} orphan within the grace ` +
      `period (left alone), ${c['deleted-leftover']} left by deleted media, ${c['missing-original']} media missing ` +
      `their original, ${c['missing-derived']} derived objects missing` +
      (report.errors > 0 ? `; ${report.errors} fixes FAILED (rerun)` : ''),
  );
  return lines.join('\n');
}
