import { html, nothing } from 'lit';
import type { RenderableMedia } from '../../elements/media-types.ts';
import { Page, when } from '../base.ts';
import { api, errorText } from '../session.ts';
import { mediaCard } from './card.ts';

interface PostView {
  postId: string;
  caption: string;
  createdAt: string;
  media: RenderableMedia[];
}

class PostsPage extends Page {
  static override properties = { posts: { state: true }, error: { state: true } };
  declare posts: PostView[] | undefined;
  declare error: string | undefined;

  override connectedCallback() {
    super.connectedCallback();
    api.json<{ items: PostView[] }>('GET', '/users/me/posts?limit=50').then(
      (page) => (this.posts = page.items),
      (err: unknown) => (this.error = errorText(err)),
    );
  }

  override render() {
    if (this.error)
      return html`<h1>Posts</h1>
        <p class="error" role="alert">${this.error}</p>`;
    if (!this.posts)
      return html`<h1>Posts</h1>
        <p class="muted" role="status">Loading…</p>`;
    return html`<h1>Posts</h1>
      ${
        this.posts.length === 0
          ? html`<p class="empty">
              No posts yet. Apps make posts through the API (<code>POST /api/v1/posts</code>).
            </p>`
          : nothing
      }
      ${this.posts.map(
        (p) =>
          html`<article class="card post">
            <p class="muted small">${when(p.createdAt)}</p>
            ${p.caption ? html`<p class="caption">${p.caption}</p>` : nothing}
            <ul class="grid" aria-label="Media of the post">
              ${p.media.map((m) => mediaCard(m))}
            </ul>
          </article>`,
      )}`;
  }
}
customElements.define('mediary-posts-page', PostsPage);
