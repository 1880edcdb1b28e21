/**
 * The `mediary` command line: serve | migrate | devices … | users token | audit | openapi, and the client
 * commands upload | media … | agent (in src/cli/, loaded only when used).
 */
import { parseArgs } from 'node:util';
import type { Server } from './app.ts';
import { ConfigError, StartupError, loadConfig, type Config } from './config.ts';
import type { Pool, Queryable } from './db/pool.ts';
import type { Logger } from './log.ts';
import { commandHelp, usage, wantsHelp } from './cli/help.ts';

// Only what every command needs is imported above (no dependency outside Node itself): the server
// side (pg, pg-boss, sharp, the store SDKs, Fastify, pino …) is imported by the commands that use
// it, so `mediary --help` and the client commands (upload, media, agent) start without loading it.
const server = () => serverPart(import('./app.ts'));
const database = () => serverPart(import('./db/open.ts'));
const principals = () => serverPart(import('./auth/principals.ts'));

/**
 * A server module, which the client package (`npm run pack:client`: SDK, upload, media, agent)
 * leaves out: there a server command says so instead of failing on a missing file.
 */
async function serverPart<T>(loading: Promise<T>): Promise<T> {
  try {
    return await loading;
  } catch (err) {
    // A file of ours that is not there ("Cannot find module"), not a dependency ("… package").
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.startsWith('Cannot find module')) {
      throw new UsageError(
        'this is a server command: it needs the mediary package (mediary-client has the client commands only)',
      );
    }
    throw err;
  }
}
const createLogger = async (level: string, fd?: number) => (await import('./log.ts')).createLogger(level, fd);

const USAGE = usage();

class UsageError extends Error {}

async function withDatabase<T>(config: Config, logger: Logger, fn: (db: Pool) => Promise<T>) {
  const db = await (await database()).openDatabase(config, logger, 'attach');
  try {
    return await fn(db.pool);
  } finally {
    await db.close();
  }
}

async function serve(config: Config, logger: Logger) {
  // Signals are handled from the start: one that arrives while the service is still starting
  // stops it as soon as it is up (a failed start stops what it started by itself).
  const running: { server?: Server } = {};
  let signalled = false;
  const stop = (s: Server) =>
    s.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    logger.info({ signal }, 'shutting down');
    if (running.server) void stop(running.server);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  running.server = await (await server()).startServer(config, logger);
  if (signalled) await stop(running.server);
}

async function worker(config: Config, logger: Logger) {
  const proc = await (await server()).startWorkerProcess(config, logger);
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

/** Runs `fn` in a transaction whose audit rows name the operator (migration 0027's triggers). */
async function asOperator<T>(db: Pool, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const { withTransaction } = await serverPart(import('./db/pool.ts'));
  const { cliActor, setAuditContext } = await serverPart(import('./audit/context.ts'));
  return withTransaction(db, async (tx) => {
    await setAuditContext(tx, cliActor());
    return fn(tx);
  });
}

async function devices(args: string[], config: Config, logger: Logger) {
  const { createDevice, listDevices, revokeDevice } = await principals();
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
        asOperator(db, (tx) => createDevice(tx, { name: values.name!, ownerUserId: values.owner })),
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
      const ok = await withDatabase(config, logger, (db) => asOperator(db, (tx) => revokeDevice(tx, id)));
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
  const { mintUserToken } = await principals();
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
      case 'claim':
        return await (await import('./cli/claim.ts')).claimCommand(rest);
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
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    const help = command === 'help' && rest[0] ? commandHelp(rest[0], rest.slice(1)) : undefined;
    console.log(help ?? USAGE);
    return;
  }
  if (wantsHelp(rest)) {
    const help = commandHelp(command, rest);
    if (help === undefined) throw new UsageError(`unknown command: ${command}`);
    console.log(help);
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
      ? await createLogger(config.logLevel)
      : await createLogger(process.env.LOG_LEVEL ?? 'warn', 2);
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
      const { storageCommand } = await serverPart(import('./cli/storage.ts'));
      const problem = await storageCommand(rest, config, logger);
      if (problem !== undefined) throw new UsageError(problem);
      return;
    }
    case 'audit': {
      const { auditCommand } = await serverPart(import('./cli/audit.ts'));
      const problem = await auditCommand(rest, config, logger);
      if (problem !== undefined) throw new UsageError(problem);
      return;
    }
    case 'openapi': {
      const { openApiDocument } = await serverPart(import('./http/openapi.ts'));
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
  if (err instanceof StartupError) {
    console.error(`mediary: ${err.message}`);
    process.exit(1);
  }
  console.error('mediary:', err);
  process.exit(1);
});
