import { parseArgs } from 'node:util';
import { openDatabase, signingSecret } from '../app.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { migrateStorage } from '../media/storage-migration.ts';
import { sweep } from '../media/sweeper.ts';
import { createStore } from '../storage/factory.ts';
import { UrlSigner } from '../storage/signing.ts';

export const STORAGE_USAGE = `  storage setup                           create the bucket if missing, apply CORS for S3_CORS_ORIGINS
  storage sweep                           abort expired uploads, remove objects without a row (once)
  storage migrate --from local --to s3 [--dry-run]
                                          copy every object, verify size + sha256, repoint rows`;

const BACKENDS = ['local', 's3'] as const;
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
    },
  });
  const signer = new UrlSigner(await signingSecret(config));
  switch (positionals[0]) {
    case 'setup': {
      const store = createStore(config, config.storage.backend, signer);
      for (const line of await store.setup({ corsOrigins: config.s3?.corsOrigins ?? [] })) console.log(line);
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
        return 'storage migrate needs --from and --to, two different backends of: local, s3';
      }
      const from = createStore(config, values.from, signer);
      const to = createStore(config, values.to, signer);
      const database = await openDatabase(config, logger, 'attach');
      try {
        const dryRun = values['dry-run'] ?? false;
        const report = await migrateStorage(database.pool, from, to, {
          dryRun,
          progress: (line) => console.log(line),
        });
        console.log(
          `${dryRun ? 'dry run: ' : ''}${report.copied} copied (${report.bytes} bytes), ${report.missing} missing, ` +
            `${report.failed} failed, ${report.pending} pending uploads not moved, of ${report.total}`,
        );
        console.log(JSON.stringify(report));
        if (report.failed > 0) process.exitCode = 1;
      } finally {
        await database.close();
      }
      return;
    }
    case undefined:
    default:
      return `unknown storage command: ${positionals[0] ?? '(none)'}`;
  }
}
