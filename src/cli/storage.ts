import { parseArgs } from 'node:util';
import { openDatabase, signingSecret } from '../app.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { migrateStorage } from '../media/storage-migration.ts';
import { sweep } from '../media/sweeper.ts';
import { createStore } from '../storage/factory.ts';
import { UrlSigner } from '../storage/signing.ts';

const BACKENDS = ['local', 's3', 'gcs'] as const;
type Backend = (typeof BACKENDS)[number];
const isBackend = (v: string | undefined): v is Backend => BACKENDS.includes(v as Backend);

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
    },
  });
  const signer = new UrlSigner(await signingSecret(config));
  switch (positionals[0]) {
    case 'setup': {
      const store = createStore(config, config.storage.backend, signer);
      const corsOrigins =
        (config.storage.backend === 'gcs' ? config.gcs?.corsOrigins : config.s3?.corsOrigins) ?? [];
      for (const line of await store.setup({ corsOrigins })) console.log(line);
      return;
    }
    case 'sweep': {
      const store = createStore(config, config.storage.backend, signer);
      const database = await openDatabase(config, logger, 'attach');
      try {
        const report = await sweep(database.pool, store, config.sweeper, logger);
        console.log(JSON.stringify(report));
      } finally {
        await database.close();
      }
      return;
    }
    case 'migrate': {
      if (!isBackend(values.from) || !isBackend(values.to) || values.from === values.to) {
        return 'storage migrate needs --from and --to, two different backends of: local, s3, gcs';
      }
      const from = createStore(config, values.from, signer);
      const to = createStore(config, values.to, signer);
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
        const report = await migrateStorage(database.pool, from, to, {
          dryRun,
          recheck: values.recheck ?? false,
          signal: stop.signal,
          progress: (line) => console.log(line),
        });
        const media = dryRun
          ? `${report.total} media to check`
          : `${report.copied} of ${report.total} media switched`;
        console.log(
          `${dryRun ? 'dry run: ' : ''}${media}; ${report.objects} objects ${dryRun ? 'to copy' : 'copied'} ` +
            `(${report.bytes} bytes), ${report.present} already on ${to.backend}; ${report.missing} missing, ` +
            `${report.failed} failed, ${report.busy} being processed, ${report.pending} pending uploads not moved` +
            (values.recheck ? `; ${report.rechecked} already on ${to.backend} rechecked` : '') +
            (report.interrupted ? '; INTERRUPTED: rerun to finish' : ''),
        );
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
