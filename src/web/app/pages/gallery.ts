import { html, nothing } from 'lit';
import type { MediaPage } from '../../../client/index.ts';
import type { RenderableMedia } from '../../elements/media-types.ts';
import { Page } from '../base.ts';
import { api, errorText } from '../session.ts';
import { mediaCard } from './card.ts';

const PAGE = 24;

class GalleryPage extends Page {
  static override properties = { items: { state: true }, loading: { state: true }, error: { state: true } };
  declare items: RenderableMedia[];
  declare loading: boolean;
  declare error: string | undefined;
  private cursor: string | null | undefined;
  private observer: IntersectionObserver | undefined;

  constructor() {
    super();
    this.items = [];
    this.loading = false;
  }

  override connectedCallback() {
    super.connectedCallback();
    void this.more();
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.observer?.disconnect();
  }

  /** The next page of the keyset listing (newest capture first). */
  private async more() {
    if (this.loading || this.cursor === null) return;
    this.loading = true;
    try {
      const page = await api.json<MediaPage>(
        'GET',
        `/users/me/media?limit=${PAGE}${this.cursor ? `&cursor=${encodeURIComponent(this.cursor)}` : ''}`,
      );
      this.items = [...this.items, ...page.items];
      this.cursor = page.nextCursor;
    } catch (err) {
      this.error = errorText(err);
    } finally {
      this.loading = false;
    }
    // The sentinel may still be in view after a short page: the observer reports only changes.
    await this.updateComplete;
    this.recheck();
  }

  override updated() {
    const sentinel = this.querySelector('.sentinel');
    if (!sentinel || this.observer) return;
    this.observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) void this.more();
      },
      { rootMargin: '600px' },
    );
    this.observer.observe(sentinel);
  }

  /** A short page leaves the sentinel in view: the observer does not fire again by itself. */
  private recheck() {
    const sentinel = this.querySelector('.sentinel');
    if (sentinel && this.cursor && sentinel.getBoundingClientRect().top < innerHeight + 600) void this.more();
  }

  override render() {
    return html`<h1>Gallery</h1>
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      ${
        !this.loading && this.items.length === 0 && !this.error
          ? html`<p class="empty">Nothing here yet. <a href="#/upload">Upload</a> a photo or a video.</p>`
          : nothing
      }
      <ul class="grid" aria-label="Media">
        ${this.items.map((m) => mediaCard(m))}
      </ul>
      <div class="sentinel" aria-hidden="true"></div>
      ${this.loading ? html`<p class="muted" role="status">Loading…</p>` : nothing}
      ${this.cursor === null && this.items.length > 0 ? html`<p class="muted end">That is everything.</p>` : nothing}`;
  }
}
customElements.define('mediary-gallery-page', GalleryPage);
