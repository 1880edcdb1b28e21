/**
 * `<mediary-video>`: the poster at once, then the HLS ladder — through hls.js (loaded on demand,
 * only when the element plays) or the browser's native HLS. The master playlist needs credentials;
 * it is fetched once with them, and the player then opens it with the playback token its URIs
 * carry (`?token=`), so no credential reaches a player request or a URL bar.
 */
import { LitElement, css, html, type PropertyValues } from 'lit';
import type { Credential } from '../../client/index.ts';
import { clientFor } from './connection.ts';
import type { RenderableMedia } from './media-types.ts';

interface HlsLike {
  loadSource(url: string): void;
  attachMedia(el: HTMLMediaElement): void;
  destroy(): void;
}

export class MediaryVideo extends LitElement {
  static override properties = {
    media: { attribute: false },
    mediaId: { type: String, attribute: 'media-id' },
    server: { type: String },
    token: { attribute: false },
    error: { state: true },
  };

  declare media: RenderableMedia | undefined;
  declare mediaId: string | undefined;
  declare server: string | undefined;
  declare token: Credential | undefined;
  declare error: string | undefined;
  private hls: HlsLike | undefined;
  private attachedTo: string | undefined;

  static override styles = css`
    :host {
      display: block;
      background: #000;
      border-radius: var(--mediary-image-radius, 0);
      overflow: hidden;
    }
    video {
      display: block;
      width: 100%;
      height: 100%;
      max-height: var(--mediary-video-max-height, 80vh);
    }
    p {
      color: #fff;
      padding: 1rem;
      margin: 0;
    }
  `;

  protected override willUpdate(changed: PropertyValues): void {
    if (
      (changed.has('mediaId') || changed.has('token')) &&
      this.mediaId &&
      this.media?.mediaId !== this.mediaId
    ) {
      void this.fetchMedia(this.mediaId);
    }
  }

  protected override updated(): void {
    const m = this.media;
    if (m?.hls && this.attachedTo !== m.mediaId) {
      this.attachedTo = m.mediaId;
      void this.attach(m).catch((err: unknown) => {
        this.error = `The video cannot be played: ${err instanceof Error ? err.message : String(err)}`;
      });
    }
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.hls?.destroy();
    this.hls = undefined;
    this.attachedTo = undefined;
  }

  private async fetchMedia(id: string) {
    const client = clientFor({ server: this.server, token: this.token });
    if (!client) return;
    this.media = await client.json<RenderableMedia>('GET', `/media/${encodeURIComponent(id)}`);
  }

  /** The master playlist's URL opened by its own playback token (no Authorization header needed). */
  private async playableUrl(m: RenderableMedia): Promise<string> {
    const client = clientFor({ server: this.server, token: this.token });
    if (!client) throw new Error('not signed in');
    const res = await client.raw('GET', `/media/${m.mediaId}/hls/master.m3u8`);
    const text = await res.text();
    const token = /[?&]token=([^&\s]+)/.exec(text)?.[1];
    if (!token) throw new Error('the playlist carries no playback token');
    return client.url(`/media/${m.mediaId}/hls/master.m3u8?token=${token}`);
  }

  private async attach(m: RenderableMedia) {
    const video = this.renderRoot.querySelector('video');
    if (!video) return;
    const url = await this.playableUrl(m);
    const { default: Hls } = await import('hls.js/light');
    if (Hls.isSupported()) {
      this.hls?.destroy();
      const hls = new Hls({ enableWorker: false }) as HlsLike;
      hls.loadSource(url);
      hls.attachMedia(video);
      this.hls = hls;
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = url;
    } else {
      throw new Error('this browser plays no HLS');
    }
  }

  override render() {
    const m = this.media;
    const poster = (m?.variants ?? []).find((v) => v.name === '1200' || v.width >= 1000)?.downloadUrl;
    if (m && !m.hls) return html`<p>The video is not ready yet (${m.status}).</p>`;
    return html`<video
        controls
        playsinline
        preload="metadata"
        poster=${poster ?? ''}
        aria-label=${m?.fileName ?? 'Video'}
      ></video>
      ${this.error ? html`<p role="alert">${this.error}</p>` : ''}`;
  }
}

if (!customElements.get('mediary-video')) customElements.define('mediary-video', MediaryVideo);

declare global {
  interface HTMLElementTagNameMap {
    'mediary-video': MediaryVideo;
  }
}
