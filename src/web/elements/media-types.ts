/**
 * The parts of the media record the elements render (docs/CONTRACTS.md, "Processing"): the SDK's
 * `MediaView`, which derives from the wire contract (src/contract), so these cannot drift.
 */
import type { MediaView } from '../../client/index.ts';

export type RenderableMedia = MediaView;
export type VariantView = MediaView['variants'][number];
export type HlsView = NonNullable<MediaView['hls']>;
