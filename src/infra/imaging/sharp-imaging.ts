/**
 * The sharp adapter, the only module that imports sharp; implements `Imaging`
 * (src/processing/ports.ts). It decodes an image once (with a pixel limit), applies the EXIF orientation, resizes to the largest size needed into a raw pixel
 * buffer, and derives every variant and the placeholder pixels from that buffer. Outputs carry no
 * metadata (sharp strips it unless asked to keep it).
 */
import { performance } from 'node:perf_hooks';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import {
  ImageDecodeError,
  type HeifLayout,
  type Imaging,
  type RenderedVariant,
  type RenderOptions,
  type RenderResult,
} from '../../processing/ports.ts';

export { ImageDecodeError };

// ThumbHash keeps only low frequencies: 64 px gives the same hash as 100 px (checked on camera
// photos) for a third of the work.
const PREVIEW_MAX = 64;

const BYTES_PER_SAMPLE: Record<string, number> = {
  uchar: 1,
  char: 1,
  ushort: 2,
  short: 2,
  uint: 4,
  int: 4,
  float: 4,
  complex: 8,
  double: 8,
  dpcomplex: 16,
};

/**
 * Bytes libvips may hold to decode this image, from its header: width × height × channels ×
 * bytes per sample, doubled for an interlaced PNG or a progressive JPEG (libvips must decode those
 * whole into memory before it can shrink them, and then holds the copy it converts). Measured with
 * sharp 0.34 on 9999×10000: an interlaced 16-bit RGB PNG (estimate 1.2 GB) took +840 MB of RSS,
 * a progressive 8-bit JPEG (estimate 600 MB) +290 MB. Other images stream and take much less; the
 * estimate is an upper bound for them.
 */
export function estimateDecodeBytes(
  meta: Pick<Metadata, 'width' | 'height' | 'channels' | 'depth' | 'isProgressive'>,
): number {
  const samples = (meta.width ?? 0) * (meta.height ?? 0) * (meta.channels ?? 4);
  const bytes = samples * (BYTES_PER_SAMPLE[meta.depth ?? 'uchar'] ?? 4);
  return meta.isProgressive ? bytes * 2 : bytes;
}

const MiB = 1024 * 1024;

function describe(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  // libvips messages can be long and multi-line; the first line says what is wrong.
  return (msg.split('\n')[0] ?? msg).slice(0, 300);
}

export async function renderVariants(input: Buffer, opts: RenderOptions): Promise<RenderResult> {
  const limits = { limitInputPixels: opts.maxPixels, failOn: 'warning' as const };
  const trace = opts.trace ?? (() => undefined);
  const t = performance.now();
  let meta: Metadata;
  try {
    meta = await sharp(input, limits).metadata(); // header only: no pixel decode
  } catch (err) {
    if (/pixel limit/i.test(describe(err))) {
      throw new ImageDecodeError(
        'too_large',
        `The image has more than the ${opts.maxPixels} pixels allowed.`,
      );
    }
    throw new ImageDecodeError('corrupt', `The image cannot be read: ${describe(err)}`, { cause: err });
  }
  const { width, height } = meta;
  if (!width || !height) throw new ImageDecodeError('corrupt', 'The image has no dimensions.');
  if (width * height > opts.maxPixels) {
    throw new ImageDecodeError(
      'too_large',
      `The image has ${width}×${height} pixels, more than the ${opts.maxPixels} allowed.`,
    );
  }
  const decodeBytes = estimateDecodeBytes(meta);
  if (opts.maxDecodeBytes !== undefined && decodeBytes > opts.maxDecodeBytes) {
    const how = [
      meta.depth && meta.depth !== 'uchar' ? `${meta.depth === 'ushort' ? '16' : meta.depth}-bit` : '',
      meta.isProgressive ? (meta.format === 'png' ? 'interlaced' : 'progressive') : '',
    ]
      .filter(Boolean)
      .join(' ');
    throw new ImageDecodeError(
      'too_large',
      `Decoding this ${width}×${height}${how ? ` ${how}` : ''} image would take about ${Math.ceil(decodeBytes / MiB)} MiB, more than the ${Math.floor(opts.maxDecodeBytes / MiB)} MiB allowed.`,
    );
  }
  const shown = opts.autoOrient && meta.autoOrient ? meta.autoOrient : { width, height };
  const largest = Math.max(...opts.sizes);
  trace('metadata', t);
  const release = opts.reserve ? await opts.reserve(decodeBytes) : () => undefined;
  try {
    return await decodeAndEncode(input, opts, limits, shown, largest);
  } finally {
    release();
  }
}

async function decodeAndEncode(
  input: Buffer,
  opts: RenderOptions,
  limits: { limitInputPixels: number; failOn: 'warning' },
  shown: { width: number; height: number },
  largest: number,
): Promise<RenderResult> {
  const trace = opts.trace ?? (() => undefined);
  const t = performance.now();

  // The one decode: orientation, colour to sRGB, shrink to the largest size (JPEG shrink-on-load).
  let base: { data: Buffer; info: OutputInfo };
  try {
    let pipeline = sharp(input, { ...limits, sequentialRead: true });
    if (opts.autoOrient) pipeline = pipeline.autoOrient();
    base = await pipeline
      // A square crop needs the shorter edge at the largest size; anything else the longer one.
      .resize(largest, largest, {
        fit: opts.crop === 'square' ? 'outside' : 'inside',
        withoutEnlargement: true,
      })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    const tooLarge = /pixel limit/i.test(describe(err));
    throw new ImageDecodeError(
      tooLarge ? 'too_large' : 'corrupt',
      `The image cannot be decoded: ${describe(err)}`,
      { cause: err },
    );
  }
  trace('decode', t);
  opts.onProgress?.(0.4);
  const raw = {
    raw: {
      width: base.info.width,
      height: base.info.height,
      channels: base.info.channels,
    },
  };

  // Every output is derived from the one raw buffer, all at once: the largest encode is the
  // longest step, so it starts first, and each variant goes to `onVariant` (storage) as soon as
  // it is encoded, while the others still encode. All work has settled when this returns.
  const sizes = [...opts.sizes].sort((a, b) => b - a);
  let done = 0;
  const encodes = sizes.map(async (size): Promise<RenderedVariant> => {
    const start = performance.now();
    const side = Math.min(size, base.info.width, base.info.height);
    const img =
      opts.crop === 'square'
        ? sharp(base.data, raw).resize(side, side, { fit: 'cover', position: 'centre' })
        : sharp(base.data, raw).resize(size, size, { fit: 'inside', withoutEnlargement: true });
    const encoded =
      opts.format === 'avif' ? img.avif({ quality: 55, effort: 2 }) : img.webp({ quality: 80, effort: 4 });
    const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
    trace(`encode ${size}`, start);
    opts.onProgress?.(0.4 + (0.5 * ++done) / sizes.length);
    const variant = { size, width: info.width, height: info.height, data };
    await opts.onVariant?.(variant);
    return variant;
  });
  const previewStart = performance.now();
  const previewing = sharp(base.data, raw)
    .resize(PREVIEW_MAX, PREVIEW_MAX, { fit: 'inside', withoutEnlargement: true })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true })
    .then(({ data, info }) => {
      trace('preview', previewStart);
      const preview = { width: info.width, height: info.height, rgba: new Uint8Array(data) };
      opts.onPreview?.(preview);
      return preview;
    });

  const [preview, ...settled] = await Promise.allSettled([previewing, ...encodes]);
  for (const r of [preview, ...settled]) if (r.status === 'rejected') throw r.reason;
  return {
    width: shown.width,
    height: shown.height,
    variants: settled.map((r) => (r as PromiseFulfilledResult<RenderedVariant>).value),
    preview: (preview as PromiseFulfilledResult<RenderResult['preview']>).value,
  };
}

/** More top-level images than any camera writes; heif-convert would decode each one. */
export const HEIF_MAX_IMAGES = 16;

/**
 * The pixel limit for HEIC/HEIF, checked BEFORE heif-convert decodes anything. Prebuilt sharp
 * cannot decode HEVC, but its libheif parses the container: the `ispe` size of each top-level
 * image (a grid's is the full grid). heif-convert decodes every top-level image, so the limit
 * applies to the primary and to their total. A header libheif cannot read fails as corrupt: an
 * image whose size is unknown is never handed to the converter.
 */
export async function probeHeif(input: Buffer, maxPixels: number): Promise<HeifLayout> {
  const read = async (page: number) => {
    let m: Metadata;
    try {
      // Header only: limitInputPixels is ours to check below, with the sizes in the message.
      m = await sharp(input, { limitInputPixels: false, page }).metadata();
    } catch (err) {
      throw new ImageDecodeError('corrupt', `The HEIC image cannot be read: ${describe(err)}`, {
        cause: err,
      });
    }
    if (m.format !== 'heif' || !m.width || !m.height) {
      throw new ImageDecodeError('corrupt', 'The HEIC image has no readable dimensions.');
    }
    return m;
  };
  const first = await read(0);
  const images = first.pages ?? 1;
  const primary = first.pagePrimary ?? 0;
  if (!Number.isInteger(images) || images < 1 || images > HEIF_MAX_IMAGES) {
    throw new ImageDecodeError(
      'corrupt',
      `The HEIC file holds ${images} images; at most ${HEIF_MAX_IMAGES} are accepted.`,
    );
  }
  if (!Number.isInteger(primary) || primary < 0 || primary >= images) {
    throw new ImageDecodeError('corrupt', 'The HEIC file has no primary image.');
  }
  const sizes = [first];
  for (let page = 1; page < images; page++) sizes.push(await read(page));
  const main = sizes[primary]!;
  const width = main.width;
  const height = main.height;
  if (width * height > maxPixels) {
    throw new ImageDecodeError(
      'too_large',
      `The image has ${width}×${height} pixels, more than the ${maxPixels} allowed.`,
    );
  }
  const total = sizes.reduce((sum, m) => sum + m.width * m.height, 0);
  if (total > maxPixels) {
    throw new ImageDecodeError(
      'too_large',
      `The HEIC file's ${images} images have ${total} pixels in all, more than the ${maxPixels} allowed.`,
    );
  }
  return { width, height, primary, images };
}

/** The raw EXIF block of an image (WebP, AVIF …) from its header, without decoding pixels. */
export async function exifBlock(input: Buffer): Promise<Buffer | undefined> {
  return (await sharp(input).metadata()).exif;
}

/** Dimensions and orientation from the header (tests and diagnostics). */
export async function probeImage(input: Buffer): Promise<{
  format: string | undefined;
  width: number;
  height: number;
  orientation: number | undefined;
  hasExif: boolean;
}> {
  const m = await sharp(input).metadata();
  return {
    format: m.format,
    width: m.width ?? 0,
    height: m.height ?? 0,
    orientation: m.orientation,
    hasExif: m.exif !== undefined,
  };
}

/** The {@link Imaging} port over sharp. */
export const sharpImaging: Imaging = { render: renderVariants, probeHeif, exifBlock };
