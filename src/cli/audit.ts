/** `mediary audit`: reads the audit log from the database (read-only; the operator's view of every row). */
import { parseArgs } from 'node:util';
import { openDatabase } from '../db/open.ts';
import { listAudit } from '../audit/repo.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';

/** Returns an error message for bad usage. */
export async function auditCommand(
  args: string[],
  config: Config,
  logger: Logger,
): Promise<string | undefined> {
  const { values } = parseArgs({
    args,
    options: {
      action: { type: 'string' },
      resource: { type: 'string' },
      owner: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string', default: '50' },
      json: { type: 'boolean', default: false },
    },
  });
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) return 'audit --limit needs 1..10000';
  const time = (name: 'since' | 'until'): Date | undefined | string => {
    const v = values[name];
    if (v === undefined) return undefined;
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? `audit --${name} needs an ISO 8601 time, got "${v}"` : d;
  };
  const since = time('since');
  const until = time('until');
  if (typeof since === 'string') return since;
  if (typeof until === 'string') return until;
  const database = await openDatabase(config, logger, 'attach');
  try {
    const rows = await listAudit(database.pool, {
      ownerUserId: values.owner,
      action: values.action,
      resourceId: values.resource,
      since,
      until,
      limit,
    });
    for (const r of rows) {
      if (values.json) {
        console.log(JSON.stringify(r));
        continue;
      }
      const from = [r.ip, r.user_agent].filter((x) => x !== null).join(' ');
      console.log(
        `${r.at.toISOString()}  ${r.action}  ${r.resource_type}:${r.resource_id}  by ${r.actor_kind}:${r.actor_id ?? '-'}` +
          (from ? `  from ${from}` : '') +
          (Object.keys(r.details).length > 0 ? `  ${JSON.stringify(r.details)}` : ''),
      );
    }
  } finally {
    await database.close();
  }
  return undefined;
}
