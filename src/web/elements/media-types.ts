/** The parts of the media record the elements render (docs/CONTRACTS.md, "Processing"). */
import type { MediaView } from '../../client/index.ts';

export interface VariantView {
  name: string;
  format: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string | null;
  url: string;
  /** Signed URL usable without credentials until the record's `urlsExpireAt`. */
  downloadUrl: string;
}

export interface HlsView {
  masterPlaylist: string;
  renditions: { name: string; width: number; height: number; bitrate: number; codecs: string }[];
}

export interface RenderableMedia extends MediaView {
  variants?: VariantView[];
  placeholder?: string | null;
  hls?: HlsView | null;
  gps?: { latitude: number; longitude: number; altitude?: number } | null;
}
