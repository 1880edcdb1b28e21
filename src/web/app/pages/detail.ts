import { html, nothing, type PropertyValues } from 'lit';
import type { StatusView } from '../../../client/index.ts';
import { formatBytes, formatDuration } from '../../elements/format.ts';
import type { RenderableMedia } from '../../elements/media-types.ts';
import { Page, statusLabel, when } from '../base.ts';
import { api, errorText } from '../session.ts';

type LiveStatus = StatusView & {
  progress?: number;
  attempts?: number;
  lastError?: { message: string } | null;
};

interface Exif {
  make?: string;
  model?: string;
  lens?: string;
  exposureTime?: number;
  fNumber?: number;
  iso?: number;
  focalLength?: number;
  dateTimeOriginal?: string;
}

const exposure = (t: number) => (t >= 1 ? `${t} s` : `1/${Math.round(1 / t)} s`);

class DetailPage extends Page {
  static override properties = {
    mediaId: { type: String },
    media: { state: true },
    status: { state: true },
    error: { state: true },
    confirming: { state: true },
  };
  declare mediaId: string;
  declare media: RenderableMedia | undefined;
  declare status: LiveStatus | undefined;
  declare error: string | undefined;
  declare confirming: boolean;
  private timer: ReturnType<typeof setTimeout> | undefined;

  protected override willUpdate(changed: PropertyValues) {
    if (changed.has('mediaId')) {
      this.media = undefined;
      this.status = undefined;
      this.confirming = false;
      void this.load();
    }
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    clearTimeout(this.timer);
  }

  private async load() {
    clearTimeout(this.timer);
    try {
      this.media = await api.get(this.mediaId);
      this.error = undefined;
      if (!['READY', 'FAILED', 'DELETED'].includes(this.media.status)) this.poll();
    } catch (err) {
      this.error = errorText(err);
    }
  }

  /** Live status while the media is on its way (GET /status every second), then the full record. */
  private poll() {
    this.timer = setTimeout(() => {
      void (async () => {
        try {
          this.status = await api.json<LiveStatus>('GET', `/media/${this.mediaId}/status`);
          if (this.status.status !== this.media?.status) await this.load();
          else this.poll();
        } catch (err) {
          this.error = errorText(err);
        }
      })();
    }, 1000);
  }

  private async retry() {
    try {
      await api.json('POST', `/media/${this.mediaId}/retry-processing`, {});
      await this.load();
    } catch (err) {
      this.error = errorText(err);
    }
  }

  private async deleteMedia() {
    try {
      await api.delete(this.mediaId);
      location.hash = '#/gallery';
    } catch (err) {
      this.error = errorText(err);
    }
  }

  private facts(m: RenderableMedia) {
    const rows: [string, string][] = [
      ['Status', statusLabel[m.status] ?? m.status],
      ['Type', m.mimeType],
      ['Size', formatBytes(m.bytes)],
    ];
    if (m.width && m.height) rows.push(['Dimensions', `${m.width} × ${m.height}`]);
    if (m.durationMs) rows.push(['Duration', formatDuration(m.durationMs / 1000)]);
    rows.push(['Captured', when(m.capturedAt)], ['Uploaded', when(m.uploadedAt)]);
    if (m.cameraId) rows.push(['Camera', m.cameraId]);
    return rows;
  }

  private exif(m: RenderableMedia) {
    const e = (m.metadata as { exif?: Exif | null }).exif;
    if (!e) return [];
    const rows: [string, string][] = [];
    const camera =
      e.model && e.make && e.model.startsWith(e.make) ? e.model : [e.make, e.model].filter(Boolean).join(' ');
    if (camera) rows.push(['Camera', camera]);
    if (e.lens) rows.push(['Lens', e.lens]);
    const shot = [
      e.exposureTime ? exposure(e.exposureTime) : '',
      e.fNumber ? `f/${e.fNumber}` : '',
      e.iso ? `ISO ${e.iso}` : '',
      e.focalLength ? `${e.focalLength} mm` : '',
    ].filter(Boolean);
    if (shot.length) rows.push(['Exposure', shot.join(' · ')]);
    if (e.dateTimeOriginal) rows.push(['Taken', e.dateTimeOriginal.replace('T', ' ')]);
    return rows;
  }

  private table(caption: string, rows: [string, string][]) {
    return html`<table class="facts">
      <caption>
        ${caption}
      </caption>
      <tbody>
        ${rows.map(
          ([k, v]) =>
            html`<tr>
              <th scope="row">${k}</th>
              <td>${v}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
  }

  override render() {
    const m = this.media;
    if (this.error && !m)
      return html`<p class="error" role="alert">${this.error}</p>
        <p><a href="#/gallery">Back to the gallery</a></p>`;
    if (!m) return html`<p class="muted" role="status">Loading…</p>`;
    const live = this.status;
    const progress = live?.progress ?? (m.status === 'READY' ? 100 : 0);
    const exif = this.exif(m);
    return html`<p><a href="#/gallery">← Gallery</a></p>
      <h1 class="title">${m.fileName}</h1>
      <div class="detail">
        <div class="stage">
          ${
            m.mediaType === 'video' && m.status === 'READY'
              ? html`<mediary-video .media=${m}></mediary-video>`
              : html`<mediary-image
                  class="hero"
                  .media=${m}
                  fit="contain"
                  sizes="(max-width: 900px) 100vw, 60vw"
                  alt=${m.fileName}
                ></mediary-image>`
          }
        </div>
        <aside>
          ${
            m.status !== 'READY'
              ? html`<div class="card status-card" role="status" aria-live="polite">
                  <strong>${statusLabel[m.status]}</strong>
                  ${
                    m.status === 'UPLOADED' || m.status === 'PROCESSING'
                      ? html`<progress
                            max="100"
                            .value=${progress}
                            aria-label="Processing progress"
                          ></progress>
                          ${progress}%`
                      : nothing
                  }
                  ${m.error ? html`<p class="error">${m.error.message}</p>` : nothing}
                  ${live?.lastError && m.status !== 'FAILED' ? html`<p class="muted small">Last attempt: ${live.lastError.message}</p>` : nothing}
                </div>`
              : nothing
          }
          ${this.table('About', this.facts(m))} ${exif.length ? this.table('EXIF', exif) : nothing}
          ${
            m.gps
              ? this.table('Location (only you see this)', [
                  ['Latitude', m.gps.latitude.toFixed(5)],
                  ['Longitude', m.gps.longitude.toFixed(5)],
                  ...(typeof m.gps.altitude === 'number'
                    ? [['Altitude', `${m.gps.altitude.toFixed(0)} m`] as [string, string]]
                    : []),
                ])
              : nothing
          }
          <div class="actions">
            ${m.downloadUrl ? html`<a class="button" href=${m.downloadUrl} download=${m.fileName}>Download original</a>` : nothing}
            ${m.status === 'FAILED' ? html`<button type="button" @click=${this.retry}>Retry processing</button>` : nothing}
            ${
              this.confirming
                ? html`<span class="confirm" role="group" aria-label="Confirm deletion">
                    <button type="button" class="danger" @click=${this.deleteMedia}>Delete for good</button>
                    <button type="button" @click=${() => (this.confirming = false)}>Keep it</button>
                  </span>`
                : html`<button type="button" class="danger-outline" @click=${() => (this.confirming = true)}>
                    Delete…
                  </button>`
            }
          </div>
          ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
        </aside>
      </div>`;
  }
}
customElements.define('mediary-detail-page', DetailPage);
