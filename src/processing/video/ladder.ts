/**
 * The HLS ladder, as plain code over a probe result: which renditions to make, at what size and
 * bit rate. Never upscales; a portrait video keeps its orientation (the rung names the short side).
 */
export interface Rendition {
  name: '360p' | '720p' | '1080p' | '2160p';
  width: number;
  height: number;
  /** Target video bit rate, bits per second. */
  videoBitrate: number;
  /** Audio bit rate when the source has audio, bits per second. */
  audioBitrate: number;
}

const RUNGS: readonly { name: Rendition['name']; short: number; videoBitrate: number }[] = [
  { name: '360p', short: 360, videoBitrate: 800_000 },
  { name: '720p', short: 720, videoBitrate: 2_800_000 },
  { name: '1080p', short: 1080, videoBitrate: 5_000_000 },
  { name: '2160p', short: 2160, videoBitrate: 14_000_000 },
];

const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);

/** `width` × `height` are the displayed dimensions (rotation already applied). */
export function planLadder(width: number, height: number): Rendition[] {
  const short = Math.min(width, height);
  // Below 360p we still make one rendition at the source size, so every video plays.
  const rungs = RUNGS.filter((r) => r.short <= short || r.name === '360p');
  return rungs.map((r) => {
    const target = Math.min(r.short, short);
    const scale = target / short;
    const w = even(width * scale);
    const h = even(height * scale);
    return {
      name: r.name,
      width: w,
      height: h,
      videoBitrate: Math.round(r.videoBitrate * Math.min(1, (w * h) / (r.short * ((r.short * 16) / 9)))),
      audioBitrate: 128_000,
    };
  });
}

/** RFC 8216 master playlist with BANDWIDTH, RESOLUTION and CODECS for every rendition. */
export function masterPlaylist(
  renditions: readonly (Rendition & { playlist: string; codecs: string })[],
  hasAudio: boolean,
): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const r of renditions) {
    const bandwidth = Math.round((r.videoBitrate + (hasAudio ? r.audioBitrate : 0)) * 1.1);
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${bandwidth},RESOLUTION=${r.width}x${r.height},CODECS="${r.codecs}"`,
    );
    lines.push(r.playlist);
  }
  return lines.join('\n') + '\n';
}
