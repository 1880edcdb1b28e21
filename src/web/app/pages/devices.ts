import { html, nothing } from 'lit';
import type { RenderableMedia } from '../../elements/media-types.ts';
import { Page, when } from '../base.ts';
import { api, errorText } from '../session.ts';
import { mediaCard } from './card.ts';

export interface OwnedDevice {
  deviceId: string;
  name: string;
  createdAt: string;
  lastSeenAt: string | null;
}
interface Camera {
  cameraId: string;
  latestCaptureAt: string;
  mediaCount: number;
}

const LATEST = 6;

/** Each device's cameras with their latest captures, newest capture first. */
class DevicesPage extends Page {
  static override properties = {
    devices: { state: true },
    captures: { state: true },
    error: { state: true },
  };
  declare devices: (OwnedDevice & { cameras: Camera[] })[] | undefined;
  declare captures: Map<string, RenderableMedia[]>;
  declare error: string | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor() {
    super();
    this.captures = new Map();
  }

  override connectedCallback() {
    super.connectedCallback();
    void this.load();
    // New captures appear without a reload.
    this.timer = setInterval(() => void this.load(), 5000);
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this.timer);
  }

  private async load() {
    try {
      const list = await api.json<{ items: OwnedDevice[] }>('GET', '/devices');
      const items = await Promise.all(
        list.items.map(async (d) => ({
          ...d,
          cameras: (await api.json<{ items: Camera[] }>('GET', `/devices/${d.deviceId}/cameras`)).items,
        })),
      );
      const captures = new Map<string, RenderableMedia[]>();
      await Promise.all(
        items.flatMap((d) =>
          d.cameras.map(async (c) => {
            const page = await api.listDeviceMedia(d.deviceId, { cameraId: c.cameraId, limit: LATEST });
            captures.set(`${d.deviceId}/${c.cameraId}`, page.items);
          }),
        ),
      );
      this.devices = items;
      this.captures = captures;
      this.error = undefined;
    } catch (err) {
      this.error = errorText(err);
    }
  }

  override render() {
    if (this.error)
      return html`<h1>Devices</h1>
        <p class="error" role="alert">${this.error}</p>`;
    if (!this.devices)
      return html`<h1>Devices</h1>
        <p class="muted" role="status">Loading…</p>`;
    return html`<h1>Devices</h1>
      ${
        this.devices.length === 0
          ? html`<p class="empty">
              No devices yet. Register a camera on the <a href="#/admin">Admin</a> page.
            </p>`
          : nothing
      }
      ${this.devices.map(
        (d) =>
          html`<section class="card device" data-device-id=${d.deviceId}>
            <h2>${d.name}</h2>
            <p class="muted small">Last seen ${when(d.lastSeenAt)}</p>
            ${d.cameras.length === 0 ? html`<p class="muted">No captures yet.</p>` : nothing}
            ${d.cameras.map(
              (c) =>
                html`<h3>
                    ${c.cameraId}
                    <span class="muted small"
                      >· ${c.mediaCount} ${c.mediaCount === 1 ? 'capture' : 'captures'}, latest
                      ${when(c.latestCaptureAt)}</span
                    >
                  </h3>
                  <ul class="grid small-tiles" aria-label=${`Latest captures of ${d.name} ${c.cameraId}`}>
                    ${(this.captures.get(`${d.deviceId}/${c.cameraId}`) ?? []).map((m) => mediaCard(m, '160px'))}
                  </ul>`,
            )}
          </section>`,
      )}`;
  }
}
customElements.define('mediary-devices-page', DevicesPage);
