/**
 * CDN purge on delete (issue 18): one generic HTTP call per batch of URLs, in the shape of
 * Cloudflare's purge-by-URL API — `POST <CDN_PURGE_URL>` with `{"files": ["https://…", …]}` and
 * the configured header (`Authorization: Bearer …`). CloudFront's CreateInvalidation is SigV4 +
 * XML, so it is reached through a small function (Lambda URL) that maps `files` to `Paths`; see
 * docs/RUNBOOKS/CDN-PURGE.md. Called from the deletion outbox, which retries with backoff.
 */
import type { CdnPurgeConfig } from '../config.ts';
import type { CdnPurge } from '../media/deletion-outbox.ts';

/** The URLs a CDN caches a media's objects under, from the configured templates. */
export function purgeUrls(templates: readonly string[], mediaId: string, keys: readonly string[]): string[] {
  const encodeKey = (key: string) => key.split('/').map(encodeURIComponent).join('/');
  const urls = new Set<string>();
  for (const t of templates) {
    const withMedia = t.replaceAll('{mediaId}', encodeURIComponent(mediaId));
    if (!withMedia.includes('{key}')) urls.add(withMedia);
    else for (const key of keys) urls.add(withMedia.replaceAll('{key}', encodeKey(key)));
  }
  return [...urls];
}

export class HttpCdnPurge implements CdnPurge {
  constructor(private readonly config: CdnPurgeConfig) {}

  get maxAttempts(): number {
    return this.config.maxAttempts;
  }

  async purge(mediaId: string, keys: readonly string[]): Promise<void> {
    const files = purgeUrls(this.config.fileUrlTemplates, mediaId, keys);
    for (let i = 0; i < files.length; i += this.config.batchSize) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (this.config.header) headers[this.config.header.name] = this.config.header.value;
      const res = await fetch(this.config.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ files: files.slice(i, i + this.config.batchSize) }),
        signal: AbortSignal.timeout(this.config.timeoutMs),
        redirect: 'error',
      });
      const text = await res.text().catch(() => '');
      if (!res.ok) throw new Error(`CDN purge answered ${res.status}: ${text.slice(0, 200)}`);
    }
  }
}
