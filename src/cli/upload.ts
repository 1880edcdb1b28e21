/**
 * `mediary upload <files…>`: progress per file, then a summary. The same file sent again by the
 * same key returns its existing media (the idempotency key is the file's SHA-256) unless `--new`.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FileStateStore, MediaryError, uploadFile, type UploadResult } from '../client/node.ts';
import { clientFrom, connectionOptions, formatBytes, positiveInt, UsageError } from './common.ts';
import { ProgressBars, renderProgress } from './progress-bar.ts';

export async function uploadCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...connectionOptions,
      wait: { type: 'boolean', default: false },
      concurrency: { type: 'string' },
      camera: { type: 'string' },
      reason: { type: 'string' },
      'state-dir': { type: 'string' },
      new: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length === 0) throw new UsageError('upload needs at least one file');
  const client = clientFrom(values);
  const concurrency = positiveInt(values.concurrency, '--concurrency', 4);
  const stateStore = new FileStateStore(values['state-dir'] ?? process.env.MEDIARY_STATE_DIR ?? undefined);
  const bars = new ProgressBars();
  const rows: { file: string; result?: UploadResult; error?: string; seconds: number }[] = [];
  const slots = positionals.map((f) => bars.add(path.basename(f)));

  for (const [i, file] of positionals.entries()) {
    const label = path.basename(file);
    const started = Date.now();
    try {
      const result = await uploadFile(file, {
        client,
        concurrency,
        cameraId: values.camera,
        reason: values.reason,
        stateStore,
        idempotentByContent: !values.new,
        wait: values.wait,
        onProgress: (p) => {
          const { text, pct } = renderProgress(p);
          bars.milestone(slots[i]!, label, text, pct);
        },
      });
      const seconds = (Date.now() - started) / 1000;
      const resumed =
        result.partsSkipped > 0 ? ` (resumed: ${result.partsSkipped} parts already stored)` : '';
      const again = result.created ? '' : ' (uploaded before: the existing media; --new for another)';
      bars.line(slots[i]!, label, `done ${result.mediaId} ${result.status}${resumed}${again}`);
      rows.push({ file, result, seconds });
    } catch (err) {
      let message = err instanceof Error ? err.message : String(err);
      if (err instanceof MediaryError && err.code === 'invalid_state' && !values.new) {
        message += ' (an earlier upload of this file was deleted: pass --new to upload it again)';
      }
      bars.line(slots[i]!, label, `FAILED: ${message}`);
      rows.push({ file, error: message, seconds: (Date.now() - started) / 1000 });
    }
  }

  const failed = rows.filter((r) => r.error !== undefined).length;
  if (values.json) {
    console.log(
      JSON.stringify(
        rows.map((r) => ({
          file: r.file,
          mediaId: r.result?.mediaId ?? null,
          status: r.result?.status ?? null,
          created: r.result?.created ?? null,
          bytes: r.result?.bytes ?? null,
          partsSent: r.result?.partsSent ?? null,
          partsSkipped: r.result?.partsSkipped ?? null,
          seconds: r.seconds,
          error: r.error ?? null,
        })),
      ),
    );
  } else {
    const total = rows.reduce((s, r) => s + (r.result?.bytes ?? 0), 0);
    const secs = rows.reduce((s, r) => s + r.seconds, 0);
    for (const r of rows) {
      console.log(
        r.result
          ? `${r.result.mediaId}  ${r.result.status.padEnd(10)} ${formatBytes(r.result.bytes).padStart(10)}  ${r.file}`
          : `${'-'.repeat(36)}  FAILED     ${''.padStart(10)}  ${r.file}: ${r.error}`,
      );
    }
    console.log(
      `${rows.length - failed} uploaded, ${failed} failed, ${formatBytes(total)} in ${secs.toFixed(1)} s` +
        (secs > 0 ? ` (${formatBytes(total / secs)}/s)` : ''),
    );
  }
  return failed > 0 ? 1 : 0;
}
