/**
 * The `mediary` command line: serve | migrate | devices … | users token | openapi, and the client
 * commands upload | media … | agent (in src/cli/, loaded only when used).
 */
import { parseArgs } from 'node:util';
import { createDevice, listDevices, mintUserToken, revokeDevice } from './auth/principals.ts';
import { openDatabase, startServer, startWorkerProcess } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import type { Pool } from './db/pool.ts';
import { createLogger, type Logger } from './log.ts';
import { STORAGE_USAGE, storageCommand } from './cli/storage.ts';

const CLIENT_USAGE = `  upload <files…> [--wait] [--concurrency N] [--camera ID] [--json]
  media list|get|download …
  agent (--capture "COMMAND" --interval 10s | --watch DIR) [--camera ID] [--spool DIR] [--once]`;

const USAGE = `Usage: mediary <command> [options]

Service
  serve                                   run the API (embedded Postgres + local disk unless configured)
                                          and, unless WORKER_ENABLED=false, the processing worker
  worker                                  run a processing worker only (beside a running API; start
                                          more to scale out)
  migrate                                 apply database migrations and exit
  openapi                                 print the OpenAPI document (JSON)

Admin (work while the service runs on the embedded default)
  devices create --name NAME [--owner USER_ID] [--json]
                                          register a device; prints its id and API key once
  devices list [--json]
  devices revoke DEVICE_ID
  users token --user USER_ID [--ttl SECONDS] [--issuer ISS] [--audience AUD]
                                          mint a user JWT with JWT_SECRET (for testing and scripts);
                                          iss/aud default to JWT_ISSUER / JWT_AUDIENCE

Storage
${STORAGE_USAGE}

Client (--server URL --key KEY, or MEDIARY_SERVER / MEDIARY_KEY)
${CLIENT_USAGE}

Configuration comes from the environment; see README.md.`;

class UsageError extends Error {}

async function withDatabase<T>(config: Config, logger: Logger, fn: (db: Pool) => Promise<T>) {
  const database = await openDatabase(config, logger, 'attach');
  try {
    return await fn(database.pool);
  } finally {
    await database.close();
  }
}

async function serve(config: Config, logger: Logger) {
  const server = await startServer(config, logger);
  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function worker(config: Config, logger: Logger) {
  const proc = await startWorkerProcess(config, logger);
  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'worker shutting down');
    proc.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'worker shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function devices(args: string[], config: Config, logger: Logger) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      owner: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const [sub, id] = positionals;
  switch (sub) {
    case 'create': {
      if (!values.name) throw new UsageError('devices create needs --name NAME');
      const { device, apiKey } = await withDatabase(config, logger, (db) =>
        createDevice(db, { name: values.name!, ownerUserId: values.owner }),
      );
      if (values.json) console.log(JSON.stringify({ ...device, apiKey }));
      else {
        console.log(`device id: ${device.id}`);
        console.log(`api key:   ${apiKey}`);
        console.log('Store the key now: only its hash is kept, it cannot be shown again.');
      }
      return;
    }
    case 'list': {
      const list = await withDatabase(config, logger, (db) => listDevices(db));
      if (values.json) console.log(JSON.stringify(list));
      else
        for (const d of list)
          console.log(`${d.id}  ${d.name}  owner=${d.ownerUserId ?? '-'}  ${d.createdAt}`);
      return;
    }
    case 'revoke': {
      if (!id) throw new UsageError('devices revoke needs a DEVICE_ID');
      const ok = await withDatabase(config, logger, (db) => revokeDevice(db, id));
      if (!ok) throw new UsageError(`no active device ${id}`);
      console.log(`revoked ${id}`);
      return;
    }
    case undefined:
    default:
      throw new UsageError(`unknown devices command: ${sub}`);
  }
}

async function users(args: string[], config: Config) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      user: { type: 'string' },
      ttl: { type: 'string', default: '3600' },
      issuer: { type: 'string' },
      audience: { type: 'string' },
    },
  });
  if (positionals[0] !== 'token')
    throw new UsageError(`unknown users command: ${positionals[0] ?? '(none)'}`);
  if (!values.user) throw new UsageError('users token needs --user USER_ID');
  if (!config.auth.jwtSecret) throw new UsageError('users token needs JWT_SECRET to be set');
  // The server checks JWT_ISSUER / JWT_AUDIENCE when set: mint with them unless told otherwise.
  const claims = {
    issuer: values.issuer ?? config.auth.issuer,
    audience: values.audience ?? config.auth.audience,
  };
  console.log(await mintUserToken(config.auth.jwtSecret, values.user, Number(values.ttl), claims));
}

async function clientCommand(command: string, rest: string[]): Promise<number | undefined> {
  try {
    switch (command) {
      case 'upload':
        return await (await import('./cli/upload.ts')).uploadCommand(rest);
      case 'media':
        return await (await import('./cli/media.ts')).mediaCommand(rest);
      case 'agent':
        return await (await import('./cli/agent.ts')).agentCommand(rest);
      default:
        return undefined;
    }
  } catch (err) {
    const { UsageError: ClientUsageError } = await import('./cli/common.ts');
    if (
      err instanceof ClientUsageError ||
      (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      throw new UsageError(err.message);
    }
    throw err;
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    console.log(USAGE);
    return;
  }
  // Client commands talk to a server over HTTP; they need none of the server's configuration.
  const client = await clientCommand(command, rest);
  if (client !== undefined) {
    process.exitCode = client;
    return;
  }
  const config = loadConfig();
  // Admin commands keep stdout for their answer; logs go to stderr.
  const logger =
    command === 'serve' || command === 'worker'
      ? createLogger(config.logLevel)
      : createLogger(process.env.LOG_LEVEL ?? 'warn', 2);
  switch (command) {
    case 'serve':
      return serve(config, logger);
    case 'worker':
      return worker(config, logger);
    case 'migrate':
      await withDatabase(config, logger, () => Promise.resolve());
      console.log('migrations applied');
      return;
    case 'devices':
      return devices(rest, config, logger);
    case 'users':
      return users(rest, config);
    case 'storage': {
      const problem = await storageCommand(rest, config, logger);
      if (problem !== undefined) throw new UsageError(problem);
      return;
    }
    case 'openapi': {
      const { openApiDocument } = await import('./http/openapi.ts');
      console.log(JSON.stringify(await openApiDocument(config, logger), null, 2));
      return;
    }
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError || err instanceof ConfigError) {
    console.error(`mediary: ${err.message}`);
    if (err instanceof UsageError) console.error(`\n${USAGE}`);
    process.exit(2);
  }
  console.error('mediary:', err);
  process.exit(1);
});
