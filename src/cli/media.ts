/** `mediary media list|get|download`: quick inspection from a terminal. */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import type { ListQuery, MediaView } from '../client/node.ts';
import { LISTABLE_STATUSES as STATUSES } from '../contract/statuses.ts';
import { clientFrom, connectionOptions, formatBytes, positiveInt, UsageError } from './common.ts';

export async function mediaCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...connectionOptions,
      device: { type: 'string' },
      camera: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      output: { type: 'string', short: 'o' },
      json: { type: 'boolean', default: false },
    },
  });
  const [sub, id] = positionals;
  const client = clientFrom(values);
  switch (sub) {
    case 'list': {
      const status = values.status?.toUpperCase();
      if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) {
        throw new UsageError(`--status must be one of ${STATUSES.join(', ')}`);
      }
      const query: ListQuery = {
        limit: positiveInt(values.limit, '--limit', 20),
        cameraId: values.camera,
        status: status as ListQuery['status'],
        cursor: values.cursor,
      };
      // A device key names its device: `me` lists its own media.
      const device = values.device ?? process.env.MEDIARY_DEVICE ?? (client.isDevice ? 'me' : undefined);
      const page = device
        ? await client.listDeviceMedia(device, query)
        : await client.listUserMedia('me', query);
      if (values.json) console.log(JSON.stringify(page));
      else {
        for (const m of page.items) console.log(line(m));
        if (page.nextCursor) console.log(`more: --cursor ${page.nextCursor}`);
      }
      return 0;
    }
    case 'get': {
      if (!id) throw new UsageError('media get needs a MEDIA_ID');
      console.log(JSON.stringify(await client.get(id), null, 2));
      return 0;
    }
    case 'download': {
      if (!id) throw new UsageError('media download needs a MEDIA_ID');
      const res = await client.download(id);
      if (!res.body) throw new Error('empty response');
      const body = Readable.fromWeb(res.body as never);
      if (values.output) {
        await pipeline(body, createWriteStream(values.output));
        console.error(
          `wrote ${values.output} (${formatBytes(Number(res.headers.get('content-length') ?? 0))})`,
        );
      } else await pipeline(body, process.stdout);
      return 0;
    }
    case undefined:
    default:
      throw new UsageError(`unknown media command: ${sub ?? '(none)'}`);
  }
}

function line(m: MediaView): string {
  return [
    m.mediaId,
    m.status.padEnd(10),
    m.capturedAt,
    (m.cameraId ?? '-').padEnd(10),
    formatBytes(m.bytes).padStart(10),
    m.fileName,
  ].join('  ');
}
