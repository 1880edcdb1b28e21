/** Pages render into the light DOM, so the app's one stylesheet (app.css) styles them. */
import { LitElement } from 'lit';

export class Page extends LitElement {
  protected override createRenderRoot() {
    return this;
  }
}

export const statusLabel: Record<string, string> = {
  PENDING: 'Uploading',
  UPLOADED: 'Waiting',
  PROCESSING: 'Processing',
  READY: 'Ready',
  FAILED: 'Failed',
  DELETED: 'Deleted',
};

export const when = (iso: string | null | undefined) =>
  iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—';
