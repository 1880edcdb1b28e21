import { html, nothing } from 'lit';
import type { RenderableMedia } from '../../elements/media-types.ts';
import { formatDuration } from '../../elements/format.ts';
import { statusLabel } from '../base.ts';

/** One media tile: its placeholder and image (or poster), a link to the detail page, its status. */
export const mediaCard = (m: RenderableMedia, sizes = '(max-width: 600px) 50vw, 220px') =>
  html`<li class="tile" data-media-id=${m.mediaId} data-status=${m.status}>
    <a href="#/media/${m.mediaId}">
      <mediary-image .media=${m} sizes=${sizes} alt=""></mediary-image>
      <span class="visually-hidden">${m.fileName}</span>
      ${
        m.mediaType === 'video'
          ? html`<span class="badge play"
              >▶ ${m.durationMs ? formatDuration(m.durationMs / 1000) : 'video'}</span
            >`
          : nothing
      }
      ${m.status !== 'READY' ? html`<span class="badge status s-${m.status}">${statusLabel[m.status]}</span>` : nothing}
    </a>
  </li>`;
