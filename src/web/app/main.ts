/**
 * The Mediary web app: sign in with a token, then upload, browse, watch, and manage devices.
 * Hash routes (`#/gallery`, `#/media/<id>` …) keep it one page the server serves as-is.
 */
import { html, nothing } from 'lit';
import './app.css';
import '../elements/index.ts';
import { Page } from './base.ts';
import { signedIn, signOut, userName } from './session.ts';
import './pages/signin.ts';
import './pages/upload.ts';
import './pages/gallery.ts';
import './pages/detail.ts';
import './pages/devices.ts';
import './pages/posts.ts';
import './pages/admin.ts';

const NAV = [
  ['upload', 'Upload'],
  ['gallery', 'Gallery'],
  ['devices', 'Devices'],
  ['posts', 'Posts'],
  ['admin', 'Admin'],
] as const;

class MediaryApp extends Page {
  static override properties = { route: { state: true } };
  declare route: string;

  constructor() {
    super();
    this.route = location.hash.slice(2);
    addEventListener('hashchange', () => {
      this.route = location.hash.slice(2);
      window.scrollTo(0, 0);
    });
    addEventListener('mediary-signed-in', () => {
      location.hash = '#/upload';
      this.requestUpdate();
    });
  }

  private page() {
    const [name = '', id] = this.route.split('/');
    if (!signedIn()) return html`<mediary-signin-page></mediary-signin-page>`;
    switch (name) {
      case 'gallery':
        return html`<mediary-gallery-page></mediary-gallery-page>`;
      case 'media':
        return html`<mediary-detail-page .mediaId=${id ?? ''}></mediary-detail-page>`;
      case 'devices':
        return html`<mediary-devices-page></mediary-devices-page>`;
      case 'posts':
        return html`<mediary-posts-page></mediary-posts-page>`;
      case 'admin':
        return html`<mediary-admin-page></mediary-admin-page>`;
      default:
        return html`<mediary-upload-page></mediary-upload-page>`;
    }
  }

  override updated() {
    const current = NAV.find(([r]) => this.route.startsWith(r))?.[1] ?? (signedIn() ? 'Upload' : 'Sign in');
    document.title = `${this.route.startsWith('media/') ? 'Media' : current} · Mediary`;
  }

  override render() {
    const active = this.route.split('/')[0] || 'upload';
    return html`<header class="top">
        <a class="brand" href="#/upload"
          ><img src="/assets/favicon.svg" alt="" width="28" height="28" />Mediary</a
        >
        ${
          signedIn()
            ? html`<nav aria-label="Main">
                  ${NAV.map(
                    ([r, label]) =>
                      html`<a
                        href="#/${r}"
                        aria-current=${active === r || (r === 'gallery' && active === 'media') ? 'page' : nothing}
                        >${label}</a
                      >`,
                  )}
                </nav>
                <div class="who">
                  <span>${userName()}</span>
                  <button
                    type="button"
                    class="link"
                    @click=${() => {
                      signOut();
                      location.hash = '#/';
                      this.requestUpdate();
                    }}
                  >
                    Sign out
                  </button>
                </div>`
            : nothing
        }
      </header>
      <main id="main">${this.page()}</main>`;
  }
}

customElements.define('mediary-app', MediaryApp);
