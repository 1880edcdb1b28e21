/**
 * `<mediary-preview>`: a local preview of a File or Blob before (and while) it uploads — an image,
 * or a video's first frame — from an object URL that is released when the element goes away.
 */
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';

export class MediaryPreview extends LitElement {
  static override properties = { file: { attribute: false }, url: { state: true } };
  declare file: Blob | undefined;
  declare url: string | undefined;

  static override styles = css`
    :host {
      display: inline-block;
      width: 6rem;
      height: 6rem;
      border-radius: var(--mediary-radius, 10px);
      overflow: hidden;
      background: var(--mediary-placeholder, #e4e8f0);
    }
    img,
    video {
      width: 100%;
      height: 100%;
      object-fit: cover;
      display: block;
    }
    span {
      display: grid;
      place-items: center;
      height: 100%;
      font-size: 0.75em;
      color: var(--mediary-muted, #4f5b70);
    }
  `;

  protected override willUpdate(changed: PropertyValues): void {
    if (changed.has('file')) {
      this.release();
      const type = this.file?.type ?? '';
      if (this.file && (type.startsWith('image/') || type.startsWith('video/'))) {
        this.url = URL.createObjectURL(this.file);
      }
    }
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.release();
  }

  override connectedCallback(): void {
    super.connectedCallback();
    if (this.file && !this.url) this.requestUpdate('file');
  }

  private release() {
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = undefined;
  }

  override render() {
    const type = this.file?.type ?? '';
    const name = this.file instanceof File ? this.file.name : 'the file';
    if (!this.url) return html`<span>${this.file ? 'No preview' : nothing}</span>`;
    if (type.startsWith('video/')) {
      return html`<video
        src=${this.url + '#t=0.1'}
        muted
        playsinline
        preload="metadata"
        aria-label=${`Preview of ${name}`}
      ></video>`;
    }
    return html`<img src=${this.url} alt=${`Preview of ${name}`} />`;
  }
}

if (!customElements.get('mediary-preview')) customElements.define('mediary-preview', MediaryPreview);

declare global {
  interface HTMLElementTagNameMap {
    'mediary-preview': MediaryPreview;
  }
}
