import { parseArgs } from 'node:util';
import { openDatabase } from '../db/open.ts';
import { signingSecret } from '../storage/signing.ts';
import { actorOf, cliActor } from '../audit/context.ts';
import { insertAdminAction } from '../audit/repo.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { migrateStorage, probeWritable, StoreNotWritableError } from '../operations/storage-migration.ts';
import { formatReport, reconcile } from '../operations/reconcile.ts';
import { sweep } from '../operations/sweeper.ts';
import { tagExistingOriginals } from '../operations/tag-originals.ts';
import { createStore } from '../storage/factory.ts';
import { UrlSigner } from '../storage/signing.ts';
import { PublicUrls } from '../http/urls.ts';

const BACKENDS = ['local', 's3', 'gcs'] as const;
type Backend = (typeof BACKENDS)[number];
const isBackend = (v: string | undefined): v is Backend => BACKENDS.includes(v as Backend);

/** What a backend needs configured before a store can be made for it (undefined: nothing). */
function bucketMissing(config: Config, backend: Backend): string | undefined {
  if (backend === 's3' && !config.s3) return 'S3_BUCKET (and S3_ENDPOINT for non-AWS services)';
  if (backend === 'gcs' && !config.gcs) return 'GCS_BUCKET';
  return undefined;
}

/** `mediary storage …`; returns an error message for bad usage. */
export async function storageCommand(
  args: string[],
  config: Config,
  logger: Logger,
): Promise<string | undefined> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      recheck: { type: 'boolean', default: false },
      apply: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'grace-seconds': { type: 'string' },
      'tag-existing': { type: 'boolean', default: false },
    },
  });
  const urls = new PublicUrls(new UrlSigner(await signingSecret(config)), config.publicUrl);
  switch (positionals[0]) {
    case 'setup': {
      if (values.to !== undefined && !isBackend(values.to)) {
        return `storage setup --to needs one of: ${BACKENDS.join(', ')}`;
      }
      const target = values.to ?? config.storage.backend;
      const missing = bucketMissing(config, target);
      if (missing) return `storage setup --to ${target} needs ${missing}`;
      const store = createStore(config, target, urls);
      const corsOrigins = (target === 'gcs' ? config.gcs?.corsOrigins : config.s3?.corsOrigins) ?? [];
      console.log(`setting up the ${target} store${values.to === undefined ? ' (STORAGE_BACKEND)' : ''}:`);
      for (const line of await store.setup({ corsOrigins })) console.log(`  ${line}`);
      await probeWritable(store);
      console.log(`  writable: a probe object was written and deleted`);
      if (values['tag-existing']) {
        if (target !== 's3' || !config.s3?.archive)
          return 'storage setup --tag-existing needs S3 with S3_ARCHIVE_AFTER_DAYS';
        const database = await openDatabase(config, logger, 'attach');
        try {
          const n = await tagExistingOriginals(database.pool, store);
          console.log(`  tagged ${n} existing original(s) for the archive rule`);
        } finally {
          await database.close();
        }
      }
      if (values.to === undefined && target === 'local') {
        for (const [other, bucket] of [
          ['s3', config.s3],
          ['gcs', config.gcs],
        ] as const) {
          if (bucket === undefined) continue;
          console.log(
            `${other.toUpperCase()}_BUCKET is set but STORAGE_BACKEND=local: to prepare the bucket ` +
              `(e.g. before \`storage migrate --to ${other}\`), run \`mediary storage setup --to ${other}\``,
          );
        }
      }
      return;
    }
    case 'sweep': {
      const store = createStore(config, config.storage.backend, urls);
      const database = await openDatabase(config, logger, 'attach');
      try {
        const report = await sweep(database.pool, store, config.sweeper, logger);
        await insertAdminAction(database.pool, {
          action: 'admin.storage_sweep',
          actorId: actorOf(cliActor()).id,
          resourceType: 'storage',
          resourceId: config.storage.backend,
          details: { report },
        });
        console.log(JSON.stringify(report));
      } finally {
        await database.close();
      }
      return;
    }
    case 'reconcile': {
      const rawGrace = values['grace-seconds'];
      const grace = rawGrace === undefined ? config.sweeper.orphanGraceSeconds : Number(rawGrace);
      if (!Number.isInteger(grace) || grace < 0)
        return 'storage reconcile --grace-seconds needs a whole number ≥ 0';
      const store = createStore(config, config.storage.backend, urls);
      const database = await openDatabase(config, logger, 'attach');
      try {
        const report = await reconcile(database.pool, store, {
          apply: values.apply ?? false,
          graceSeconds: grace,
        });
        console.log(values.json ? JSON.stringify(report) : formatReport(report));
        if (report.errors > 0) process.exitCode = 1;
      } finally {
        await database.close();
      }
      return;
    }
    case 'migrate': {
      if (!isBackend(values.from) || !isBackend(values.to) || values.from === values.to) {
        return 'storage migrate needs --from and --to, two different backends of: local, s3, gcs';
      }
      const missing = bucketMissing(config, values.to);
      if (missing) return `storage migrate --to ${values.to} needs ${missing}`;
      const from = createStore(config, values.from, urls);
      const to = createStore(config, values.to, urls);
      const database = await openDatabase(config, logger, 'attach');
      // Ctrl-C: finish the objects in flight, leave the media in hand on the source, print the
      // report (a rerun finishes it). A second Ctrl-C quits at once.
      const stop = new AbortController();
      const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        console.log('interrupted: finishing the copies in flight (Ctrl-C again to quit now)…');
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const dryRun = values['dry-run'] ?? false;
        const recorded = (details: object) =>
          insertAdminAction(database.pool, {
            action: 'admin.storage_migrate',
            actorId: actorOf(cliActor()).id,
            resourceType: 'storage',
            resourceId: `${from.backend}->${to.backend}`,
            details: { dryRun, recheck: values.recheck ?? false, ...details },
          });
        // Recorded before it starts (a crash still leaves the row), and again with its report.
        await recorded({ phase: 'started' });
        let report;
        try {
          report = await migrateStorage(database.pool, from, to, {
            dryRun,
            recheck: values.recheck ?? false,
            signal: stop.signal,
            progress: (line) => console.log(line),
          });
        } catch (err) {
          if (!(err instanceof StoreNotWritableError)) throw err;
          console.error(
            `${err.message}\nNothing was ${dryRun ? 'checked' : 'copied'}. ` +
              `Prepare the target first: mediary storage setup --to ${to.backend}`,
          );
          process.exitCode = 1;
          return;
        }
        const media = dryRun
          ? `${report.total} media to check`
          : `${report.copied} of ${report.total} media switched`;
        console.log(
          `${dryRun ? 'dry run: ' : ''}${media}; ${report.objects} objects ${dryRun ? 'to copy' : 'copied'} ` +
            `(${report.bytes} bytes), ${report.present} already on ${to.backend}; ${report.missing} missing, ` +
            `${report.failed} failed, ${report.busy} being processed, ${report.pending} pending uploads not switched ` +
            `(${report.pendingCopied} of their originals ${dryRun ? 'to copy' : 'copied'})` +
            (values.recheck ? `; ${report.rechecked} already on ${to.backend} rechecked` : '') +
            (report.interrupted ? '; INTERRUPTED: rerun to finish' : ''),
        );
        await recorded({ phase: 'finished', report });
        console.log(JSON.stringify(report));
        if (report.interrupted) process.exitCode = 130;
        else if (report.failed > 0 || report.busy > 0) process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await database.close();
      }
      return;
    }
    case undefined:
    default:
      return `unknown storage command: ${positionals[0] ?? '(none)'}`;
  }
}
