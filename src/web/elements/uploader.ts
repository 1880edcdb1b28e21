/**
 * `<mediary-uploader>`: pick or drop files, upload each with the SDK (hash, session, PUT or parts,
 * complete), with per-file and total progress, pause/resume/cancel, visible retries and a live
 * region. An upload interrupted by a reload resumes when the same file is added again (the SDK
 * keeps its state in IndexedDB). Themeable through CSS custom properties (see README).
 *
 * Events (bubbling, composed): `mediary-upload-start` {file}, `mediary-upload-complete`
 * {file, result}, `mediary-upload-error` {file, error}.
 */
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { uploadFile, type Credential } from '../../client/index.ts';
import { clientFor, resolveConnection } from './connection.ts';
import { formatBytes } from './format.ts';
import './preview.ts';
import { describeRow, fractionOf, refusalFor, type Row, type UploadLimits } from './upload-rows.ts';

export type { UploadLimits } from './upload-rows.ts';

let nextRowId = 1;
const PARALLEL_FILES = 2;

export class MediaryUploader extends LitElement {
  static override properties = {
    server: { type: String },
    token: { attribute: false },
    accept: { type: String },
    cameraId: { type: String, attribute: 'camera-id' },
    label: { type: String },
    rows: { state: true },
    limits: { state: true },
    announcement: { state: true },
    dragging: { state: true },
  };

  declare server: string | undefined;
  declare token: Credential | undefined;
  /** Narrows the file picker further than the server's allow-list (an `accept` string). */
  declare accept: string | undefined;
  declare cameraId: string | undefined;
  declare label: string;
  declare rows: Row[];
  declare limits: UploadLimits | undefined;
  declare announcement: string;
  declare dragging: boolean;

  private limitsFor: unknown;

  constructor() {
    super();
    this.label = 'Drop photos and videos here';
    this.rows = [];
    this.announcement = '';
    this.dragging = false;
    this.addEventListener('dragenter', this.onDragOver);
    this.addEventListener('dragover', this.onDragOver);
    this.addEventListener('dragleave', () => (this.dragging = false));
    this.addEventListener('drop', this.onDrop);
  }

  static override styles = css`
    :host {
      display: block;
      font: var(--mediary-font, inherit);
      color: var(--mediary-text, #1d2433);
      --_accent: var(--mediary-accent, #2557d6);
      --_radius: var(--mediary-radius, 10px);
      --_border: var(--mediary-border, #b8c2d6);
      --_muted: var(--mediary-muted, #4f5b70);
      --_surface: var(--mediary-surface, #ffffff);
      --_danger: var(--mediary-danger, #b42318);
    }
    .drop {
      border: 2px dashed var(--_border);
      border-radius: var(--_radius);
      background: var(--_surface);
      padding: 1.5rem 1rem;
      text-align: center;
    }
    .drop.dragging {
      border-color: var(--_accent);
      background: color-mix(in srgb, var(--_accent) 8%, var(--_surface));
    }
    .drop p {
      margin: 0.25rem 0;
    }
    .hint {
      color: var(--_muted);
      font-size: 0.875em;
    }
    button {
      font: inherit;
      border-radius: calc(var(--_radius) * 0.6);
      border: 1px solid var(--_accent);
      background: var(--_surface);
      color: var(--_accent);
      padding: 0.35rem 0.8rem;
      cursor: pointer;
    }
    button.primary {
      background: var(--_accent);
      color: #fff;
      margin-top: 0.5rem;
    }
    button:focus-visible {
      outline: 3px solid color-mix(in srgb, var(--_accent) 50%, transparent);
      outline-offset: 2px;
    }
    .visually-hidden {
      position: absolute;
      width: 1px;
      height: 1px;
      overflow: hidden;
      clip: rect(0 0 0 0);
      white-space: nowrap;
    }
    .total {
      margin: 1rem 0 0.5rem;
      display: flex;
      gap: 0.75rem;
      align-items: center;
    }
    progress {
      flex: 1;
      width: 100%;
      height: 0.6rem;
      accent-color: var(--_accent);
    }
    ul {
      list-style: none;
      padding: 0;
      margin: 0.5rem 0 0;
      display: grid;
      gap: 0.5rem;
    }
    li {
      display: grid;
      grid-template-columns: 3.5rem 1fr auto;
      gap: 0.75rem;
      align-items: center;
      border: 1px solid var(--_border);
      border-radius: var(--_radius);
      background: var(--_surface);
      padding: 0.5rem;
    }
    mediary-preview {
      width: 3.5rem;
      height: 3.5rem;
    }
    .name {
      font-weight: 600;
      overflow-wrap: anywhere;
    }
    .meta {
      color: var(--_muted);
      font-size: 0.85em;
    }
    .error {
      color: var(--_danger);
      font-size: 0.85em;
    }
    .actions {
      display: flex;
      gap: 0.35rem;
      flex-wrap: wrap;
      justify-content: flex-end;
    }
    @media (max-width: 480px) {
      li {
        grid-template-columns: 3rem 1fr;
      }
      .actions {
        grid-column: 1 / -1;
        justify-content: flex-start;
      }
    }
  `;

  protected override willUpdate(changed: PropertyValues): void {
    if ((changed.has('server') || changed.has('token')) && this.limitsFor !== (this.token ?? 'default')) {
      void this.loadLimits();
    }
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.loadLimits();
  }

  /** The server's allow-list and size limits; without them the server still refuses what it must. */
  private async loadLimits() {
    const client = clientFor({ server: this.server, token: this.token });
    if (!client) return;
    this.limitsFor = this.token ?? 'default';
    try {
      this.limits = await client.json<UploadLimits>('GET', '/limits');
    } catch {
      this.limits = undefined;
    }
  }

  private get acceptAttr(): string {
    return this.accept ?? this.limits?.allowedMimeTypes.join(',') ?? 'image/*,video/*';
  }

  private onDragOver = (e: DragEvent) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    this.dragging = true;
  };

  private onDrop = (e: DragEvent) => {
    e.preventDefault();
    this.dragging = false;
    if (e.dataTransfer?.files.length) this.addFiles(e.dataTransfer.files);
  };

  private onPick(e: Event) {
    const input = e.target as HTMLInputElement;
    if (input.files?.length) this.addFiles(input.files);
    input.value = '';
  }

  /** Adds files to the queue (also callable by the page); files the server would refuse are marked. */
  addFiles(files: Iterable<File> | ArrayLike<File>): void {
    const added: Row[] = Array.from(files, (file) => {
      const reason = refusalFor(file, this.limits);
      return {
        id: nextRowId++,
        file,
        state: reason ? 'rejected' : 'queued',
        progress: undefined,
        retries: 0,
        message: reason ?? '',
        task: undefined,
        abort: undefined,
        result: undefined,
      };
    });
    this.rows = [...this.rows, ...added];
    const refused = added.filter((r) => r.state === 'rejected').length;
    this.announce(
      `${added.length - refused} file${added.length - refused === 1 ? '' : 's'} added` +
        (refused ? `, ${refused} refused` : ''),
    );
    this.pump();
  }

  private pump() {
    let running = this.rows.filter((r) => r.state === 'uploading' || r.state === 'paused').length;
    for (const row of this.rows) {
      if (running >= PARALLEL_FILES) break;
      if (row.state === 'queued') {
        running++;
        this.start(row);
      }
    }
  }

  private update_(row: Row, patch: Partial<Row>) {
    Object.assign(row, patch);
    this.rows = [...this.rows];
  }

  private start(row: Row) {
    const conn = resolveConnection({ server: this.server, token: this.token });
    if (!conn) {
      this.update_(row, { state: 'failed', message: 'Not signed in: no token for the upload.' });
      return;
    }
    const abort = new AbortController();
    const task = uploadFile(row.file, {
      server: conn.server,
      token: conn.token,
      cameraId: this.cameraId,
      signal: abort.signal,
      onProgress: (progress) => {
        const first = row.progress === undefined;
        this.update_(row, { progress });
        if (first) this.announce(`Uploading ${row.file.name}`);
      },
      retry: {
        onRetry: ({ attempt, error }) =>
          this.update_(row, {
            retries: row.retries + 1,
            message: `Retrying (attempt ${attempt + 1}): ${error instanceof Error ? error.message : String(error)}`,
          }),
      },
    });
    this.update_(row, { state: 'uploading', task, abort, message: '' });
    this.emit('mediary-upload-start', { file: row.file });
    task
      .then(
        (result) => {
          this.update_(row, { state: 'done', result, message: '' });
          this.announce(`${row.file.name} uploaded`);
          this.emit('mediary-upload-complete', { file: row.file, result });
        },
        (error: unknown) => {
          if (abort.signal.aborted) {
            this.update_(row, { state: 'cancelled', message: 'Cancelled.' });
            this.announce(`${row.file.name} cancelled`);
          } else {
            const message = error instanceof Error ? error.message : String(error);
            this.update_(row, { state: 'failed', message });
            this.announce(`${row.file.name} failed: ${message}`);
            this.emit('mediary-upload-error', { file: row.file, error });
          }
        },
      )
      .finally(() => this.pump());
  }

  private pause(row: Row) {
    row.task?.pause();
    this.update_(row, { state: 'paused' });
    this.announce(`${row.file.name} paused`);
  }

  private resume(row: Row) {
    row.task?.resume();
    this.update_(row, { state: 'uploading' });
    this.announce(`${row.file.name} resumed`);
  }

  private cancel(row: Row) {
    if (row.state === 'queued') this.update_(row, { state: 'cancelled', message: 'Cancelled.' });
    else row.abort?.abort();
  }

  private retry(row: Row) {
    this.update_(row, { state: 'queued', message: '', progress: undefined });
    this.pump();
  }

  private clearFinished() {
    this.rows = this.rows.filter(
      (r) => r.state === 'queued' || r.state === 'uploading' || r.state === 'paused',
    );
  }

  private emit(type: string, detail: unknown) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  private announce(text: string) {
    this.announcement = text;
  }

  private renderRow(row: Row) {
    const pct = Math.floor(fractionOf(row) * 100);
    const hashing = row.state === 'uploading' && row.progress?.phase === 'hashing';
    const value = hashing ? (row.progress!.bytesHashed / Math.max(1, row.progress!.totalBytes)) * 100 : pct;
    return html`<li data-state=${row.state} data-file=${row.file.name}>
      <mediary-preview .file=${row.file}></mediary-preview>
      <div>
        <div class="name">${row.file.name}</div>
        <div class="meta">
          ${formatBytes(row.file.size)} · <span class="phase">${describeRow(row)}</span>
          ${row.retries > 0 ? html` · <span class="retries">${row.retries} retries</span>` : nothing}
        </div>
        ${
          row.state === 'uploading' || row.state === 'paused' || row.state === 'done'
            ? html`<progress max="100" .value=${value} aria-label=${`Upload of ${row.file.name}`}></progress>`
            : nothing
        }
        ${row.message && row.state !== 'cancelled' ? html`<div class="error">${row.message}</div>` : nothing}
      </div>
      <div class="actions">
        ${
          row.state === 'uploading'
            ? html`<button
                type="button"
                @click=${() => this.pause(row)}
                aria-label=${`Pause ${row.file.name}`}
              >
                Pause
              </button>`
            : nothing
        }
        ${
          row.state === 'paused'
            ? html`<button
                type="button"
                @click=${() => this.resume(row)}
                aria-label=${`Resume ${row.file.name}`}
              >
                Resume
              </button>`
            : nothing
        }
        ${
          row.state === 'uploading' || row.state === 'paused' || row.state === 'queued'
            ? html`<button
                type="button"
                @click=${() => this.cancel(row)}
                aria-label=${`Cancel ${row.file.name}`}
              >
                Cancel
              </button>`
            : nothing
        }
        ${
          row.state === 'failed'
            ? html`<button
                type="button"
                @click=${() => this.retry(row)}
                aria-label=${`Try ${row.file.name} again`}
              >
                Try again
              </button>`
            : nothing
        }
      </div>
    </li>`;
  }

  override render() {
    const active = this.rows.filter((r) => r.state !== 'rejected' && r.state !== 'cancelled');
    const total = active.reduce((n, r) => n + r.file.size, 0);
    const sent = active.reduce((n, r) => n + fractionOf(r) * r.file.size, 0);
    const pct = total ? Math.floor((sent / total) * 100) : 0;
    const limits = this.limits;
    return html`<div class="drop ${this.dragging ? 'dragging' : ''}" part="dropzone">
        <p>${this.label}</p>
        <label class="visually-hidden" for="input">Choose files to upload</label>
        <input
          id="input"
          class="visually-hidden"
          type="file"
          multiple
          tabindex="-1"
          accept=${this.acceptAttr}
          @change=${this.onPick}
        />
        <button
          type="button"
          class="primary"
          part="button"
          @click=${() => this.renderRoot.querySelector<HTMLInputElement>('#input')?.click()}
        >
          Choose files
        </button>
        ${
          limits
            ? html`<p class="hint">
                Images up to ${formatBytes(limits.maxImageBytes)}, videos up to
                ${formatBytes(limits.maxVideoBytes)}.
              </p>`
            : nothing
        }
      </div>
      ${
        this.rows.length
          ? html`<div class="total">
                <label for="total">Total</label>
                <progress id="total" max="100" .value=${pct}></progress>
                <span class="pct">${pct}%</span>
                <button type="button" @click=${this.clearFinished}>Clear finished</button>
              </div>
              <ul aria-label="Uploads">
                ${this.rows.map((r) => this.renderRow(r))}
              </ul>`
          : nothing
      }
      <div role="status" aria-live="polite" class="visually-hidden">${this.announcement}</div>`;
  }
}

if (!customElements.get('mediary-uploader')) customElements.define('mediary-uploader', MediaryUploader);

declare global {
  interface HTMLElementTagNameMap {
    'mediary-uploader': MediaryUploader;
  }
}
