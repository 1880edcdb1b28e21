import { html, nothing } from 'lit';
import type { MediaPage } from '../../../client/index.ts';
import { formatBytes } from '../../elements/format.ts';
import type { RenderableMedia } from '../../elements/media-types.ts';
import { Page, when } from '../base.ts';
import { api, errorText } from '../session.ts';
import type { OwnedDevice } from './devices.ts';

interface Usage {
  storedBytes: number;
  openSessions: number;
  limits: { storedBytes: number; openSessions: number };
}
interface Queue {
  waiting: number;
  active: number;
  failed: number;
  deadLettered: number;
}

/** Devices (create, revoke, last seen), the processing queue (with retry) and storage use. */
class AdminPage extends Page {
  static override properties = {
    devices: { state: true },
    queue: { state: true },
    failed: { state: true },
    usage: { state: true },
    newKey: { state: true },
    claimed: { state: true },
    error: { state: true },
  };
  declare devices: OwnedDevice[] | undefined;
  declare queue: Queue | undefined;
  declare failed: RenderableMedia[];
  declare usage: Usage | undefined;
  declare newKey: { name: string; apiKey: string } | undefined;
  declare claimed: string | undefined;
  declare error: string | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor() {
    super();
    this.failed = [];
  }

  override connectedCallback() {
    super.connectedCallback();
    void this.load();
    this.timer = setInterval(() => void this.loadQueue(), 3000);
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this.timer);
  }

  private async load() {
    await Promise.all([this.loadDevices(), this.loadQueue(), this.loadUsage()]);
  }

  private guard = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      this.error = errorText(err);
    }
  };

  private loadDevices = () =>
    this.guard(async () => {
      this.devices = (await api.json<{ items: OwnedDevice[] }>('GET', '/devices')).items;
    });

  private loadUsage = () =>
    this.guard(async () => {
      this.usage = await api.json<Usage>('GET', '/users/me/usage');
    });

  private loadQueue = () =>
    this.guard(async () => {
      this.queue = await api.json<Queue>('GET', '/users/me/queue');
      const page = await api.json<MediaPage>('GET', '/users/me/media?status=FAILED&limit=50');
      // Sessions that expired before their bytes arrived are FAILED too, but never were queued.
      this.failed = page.items.filter((m) => m.uploadedAt !== null);
    });

  private async create(e: SubmitEvent) {
    e.preventDefault();
    const field = this.querySelector<HTMLInputElement>('#device-name')!;
    await this.guard(async () => {
      const r = await api.json<{ device: { name: string }; apiKey: string }>('POST', '/devices', {
        name: field.value.trim(),
      });
      this.newKey = { name: r.device.name, apiKey: r.apiKey };
      field.value = '';
      await this.loadDevices();
    });
  }

  /** The code a device shows (`mediary claim`): it becomes the caller's and fetches its own key. */
  private async claim(e: SubmitEvent) {
    e.preventDefault();
    const field = this.querySelector<HTMLInputElement>('#claim-code')!;
    await this.guard(async () => {
      const d = await api.json<{ name: string }>('POST', '/devices/claim', { userCode: field.value.trim() });
      this.claimed = d.name;
      field.value = '';
      await this.loadDevices();
    });
  }

  private async revoke(d: OwnedDevice) {
    if (!confirm(`Revoke ${d.name}? Its key stops working at once.`)) return;
    await this.guard(async () => {
      await api.json('POST', `/devices/${d.deviceId}/revoke`, {});
      await this.loadDevices();
    });
  }

  private async retry(m: RenderableMedia) {
    await this.guard(async () => {
      await api.json('POST', `/media/${m.mediaId}/retry-processing`, {});
      await this.loadQueue();
    });
  }

  private meter(label: string, used: number, limit: number, fmt: (n: number) => string) {
    return html`<div class="meter-row">
      <span>${label}</span>
      ${
        limit > 0
          ? html`<meter min="0" max=${limit} .value=${used} aria-label=${label}></meter>
              <span>${fmt(used)} of ${fmt(limit)}</span>`
          : html`<span>${fmt(used)} <span class="muted">(no limit)</span></span>`
      }
    </div>`;
  }

  override render() {
    const q = this.queue;
    return html`<h1>Admin</h1>
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      <section class="card">
        <h2>Devices</h2>
        <form class="inline" @submit=${this.create}>
          <label for="device-name">New device</label>
          <input id="device-name" required maxlength="200" placeholder="front-door camera" />
          <button class="primary" type="submit">Register</button>
        </form>
        <form class="inline" @submit=${this.claim}>
          <label for="claim-code">Claim a device</label>
          <input
            id="claim-code"
            required
            maxlength="32"
            placeholder="code it shows, e.g. WDJB-MJHT"
            autocomplete="off"
            autocapitalize="characters"
          />
          <button class="primary" type="submit">Claim</button>
        </form>
        ${
          this.claimed
            ? html`<div class="notice" role="status">
                <p><strong>${this.claimed}</strong> is yours now; it fetches its key by itself.</p>
                <button type="button" @click=${() => (this.claimed = undefined)}>Done</button>
              </div>`
            : nothing
        }
        ${
          this.newKey
            ? html`<div class="notice" role="status">
                <p>Key of <strong>${this.newKey.name}</strong>, shown this once: put it on the device now.</p>
                <code class="key">${this.newKey.apiKey}</code>
                <button type="button" @click=${() => (this.newKey = undefined)}>Done</button>
              </div>`
            : nothing
        }
        ${
          this.devices?.length
            ? html`<div class="table-wrap">
                <table class="list">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Registered</th>
                      <th scope="col">Last seen</th>
                      <th scope="col"><span class="visually-hidden">Actions</span></th>
                    </tr>
                  </thead>
                  <tbody>
                    ${this.devices.map(
                      (d) =>
                        html`<tr data-device-id=${d.deviceId}>
                          <td>
                            ${d.name}
                            <div class="muted small mono">${d.deviceId}</div>
                          </td>
                          <td>${when(d.createdAt)}</td>
                          <td>${d.lastSeenAt ? when(d.lastSeenAt) : 'never'}</td>
                          <td>
                            <button
                              type="button"
                              class="danger-outline"
                              @click=${() => this.revoke(d)}
                              aria-label=${`Revoke ${d.name}`}
                            >
                              Revoke
                            </button>
                          </td>
                        </tr>`,
                    )}
                  </tbody>
                </table>
              </div>`
            : html`<p class="muted">${this.devices ? 'No devices yet.' : 'Loading…'}</p>`
        }
      </section>
      <section class="card">
        <h2>Processing queue</h2>
        ${
          q
            ? html`<dl class="counts">
                <div>
                  <dt>Waiting</dt>
                  <dd>${q.waiting}</dd>
                </div>
                <div>
                  <dt>Active</dt>
                  <dd>${q.active}</dd>
                </div>
                <div>
                  <dt>Failed</dt>
                  <dd>${q.failed}</dd>
                </div>
                <div>
                  <dt>Dead-lettered</dt>
                  <dd>${q.deadLettered}</dd>
                </div>
              </dl>`
            : html`<p class="muted">Loading…</p>`
        }
        ${
          this.failed.length
            ? html`<ul class="plain failed">
                ${this.failed.map(
                  (m) =>
                    html`<li data-media-id=${m.mediaId}>
                      <a href="#/media/${m.mediaId}">${m.fileName}</a>
                      <span class="muted small"
                        >${m.error?.code === 'processing_failed' ? 'dead-lettered: ' : ''}${m.error?.message ?? ''}</span
                      >
                      <button type="button" @click=${() => this.retry(m)} aria-label=${`Retry ${m.fileName}`}>
                        Retry
                      </button>
                    </li>`,
                )}
              </ul>`
            : nothing
        }
      </section>
      <section class="card">
        <h2>Storage</h2>
        ${
          this.usage
            ? html`${this.meter('Stored', this.usage.storedBytes, this.usage.limits.storedBytes, formatBytes)}
              ${this.meter('Open uploads', this.usage.openSessions, this.usage.limits.openSessions, String)}`
            : html`<p class="muted">Loading…</p>`
        }
      </section>`;
  }
}
customElements.define('mediary-admin-page', AdminPage);
