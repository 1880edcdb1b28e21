import { html, nothing } from 'lit';
import type { UploadResult } from '../../../client/index.ts';
import { Page } from '../base.ts';

class UploadPage extends Page {
  static override properties = { done: { state: true } };
  declare done: UploadResult[];

  constructor() {
    super();
    this.done = [];
  }

  override render() {
    return html`<h1>Upload</h1>
      <mediary-uploader
        @mediary-upload-complete=${(e: CustomEvent<{ result: UploadResult }>) => (this.done = [e.detail.result, ...this.done])}
      ></mediary-uploader>
      <p class="muted small">
        An upload cut short (a reload, a lost connection) continues where it stopped when you add the same
        file again.
      </p>
      ${
        this.done.length
          ? html`<h2>Uploaded</h2>
              <ul class="plain">
                ${this.done.map(
                  (r) =>
                    html`<li>
                      <a href="#/media/${r.mediaId}">${r.media.fileName}</a>
                      <span class="muted">${r.mediaId}</span>
                    </li>`,
                )}
              </ul>`
          : nothing
      }`;
  }
}
customElements.define('mediary-upload-page', UploadPage);
