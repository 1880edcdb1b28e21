/**
 * `<mediary-image>`: the ThumbHash placeholder at once, then the right variant through
 * `srcset`/`sizes` (the browser picks by its layout width and pixel density). Give it a `media`
 * record, or a `media-id` and a connection (see `configure`) to fetch one.
 */
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { thumbHashToDataURL } from 'thumbhash';
import type { Credential } from '../../client/index.ts';
import { clientFor } from './connection.ts';
import type { RenderableMedia } from './media-types.ts';

function placeholderUrl(hash: string | null | undefined): string | undefined {
  if (!hash) return undefined;
  try {
    return thumbHashToDataURL(Uint8Array.from(atob(hash), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

export class MediaryImage extends LitElement {
  static override properties = {
    media: { attribute: false },
    mediaId: { type: String, attribute: 'media-id' },
    server: { type: String },
    token: { attribute: false },
    alt: { type: String },
    sizes: { type: String },
    fit: { type: String, reflect: true },
    loaded: { state: true },
  };

  declare media: RenderableMedia | undefined;
  declare mediaId: string | undefined;
  declare server: string | undefined;
  declare token: Credential | undefined;
  declare alt: string | undefined;
  /** The `sizes` attribute of the image (default `100vw`). */
  declare sizes: string;
  /** `cover` (default: fill the box, cropping) or `contain`. */
  declare fit: 'cover' | 'contain';
  declare loaded: boolean;
  private placeholder: string | undefined;
  private placeholderOf: string | null | undefined;

  constructor() {
    super();
    this.sizes = '100vw';
    this.fit = 'cover';
    this.loaded = false;
  }

  static override styles = css`
    :host {
      display: block;
      position: relative;
      overflow: hidden;
      background: var(--mediary-placeholder, #e4e8f0);
      border-radius: var(--mediary-image-radius, 0);
    }
    .ph,
    img {
      position: absolute;
      inset: 0;
      width: 100%;
      height: 100%;
      object-fit: var(--_fit, cover);
    }
    :host([fit='contain']) {
      --_fit: contain;
    }
    img {
      opacity: 0;
      transition: opacity 0.25s;
    }
    img.loaded {
      opacity: 1;
    }
    img.ph.hidden {
      display: none;
    }
  `;

  protected override willUpdate(changed: PropertyValues): void {
    if ((changed.has('mediaId') || changed.has('token') || changed.has('server')) && this.mediaId) {
      if (this.media?.mediaId !== this.mediaId) void this.fetchMedia(this.mediaId);
    }
    if (changed.has('media')) {
      this.loaded = false;
      const hash = this.media?.placeholder;
      if (hash !== this.placeholderOf) {
        this.placeholderOf = hash;
        this.placeholder = placeholderUrl(hash);
      }
    }
  }

  private async fetchMedia(id: string) {
    const client = clientFor({ server: this.server, token: this.token });
    if (!client) return;
    this.media = await client.json<RenderableMedia>('GET', `/media/${encodeURIComponent(id)}`);
  }

  override render() {
    const m = this.media;
    const variants = (m?.variants ?? []).filter((v) => v.downloadUrl).sort((a, b) => a.width - b.width);
    const alt = this.alt ?? m?.fileName ?? '';
    const fallback = variants.find((v) => v.width >= 600) ?? variants.at(-1);
    return html`${
      this.placeholder
        ? html`<img
            class="ph loaded ${this.loaded ? 'hidden' : ''}"
            src=${this.placeholder}
            alt=""
            aria-hidden="true"
          />`
        : nothing
    }
    ${
      fallback
        ? html`<img
            class=${this.loaded ? 'loaded' : ''}
            srcset=${variants.map((v) => `${v.downloadUrl} ${v.width}w`).join(', ')}
            sizes=${this.sizes}
            src=${fallback.downloadUrl}
            alt=${alt}
            width=${fallback.width}
            height=${fallback.height}
            loading="lazy"
            decoding="async"
            @load=${() => (this.loaded = true)}
          />`
        : html`<span role="img" aria-label=${alt || 'Not processed yet'}></span>`
    }`;
  }
}

if (!customElements.get('mediary-image')) customElements.define('mediary-image', MediaryImage);

declare global {
  interface HTMLElementTagNameMap {
    'mediary-image': MediaryImage;
  }
}
