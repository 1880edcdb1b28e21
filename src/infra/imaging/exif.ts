/**
 * EXIF summary and GPS (exifr; implements `ExifReader`, src/processing/ports.ts). Everything here comes from the client's file: values are checked
 * and capped, and a broken EXIF block yields a warning, never an exception.
 */
import exifr from 'exifr';
import type { ExifReader, ExifResult } from '../../processing/ports.ts';

export type { ExifResult };

const OPTIONS = {
  tiff: true,
  exif: true,
  gps: true,
  ifd1: false,
  interop: false,
  makerNote: false,
  userComment: false,
  xmp: false,
  icc: false,
  iptc: false,
  jfif: false,
  ihdr: false,
  reviveValues: false,
  translateValues: false,
} as const;

function text(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  // eslint-disable-next-line no-control-regex
  const s = v.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return s.length > 0 ? s.slice(0, 200) : undefined;
}

function num(v: unknown): number | undefined {
  const n = Array.isArray(v) ? (v[0] as unknown) : v;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined;
}

function dateTime(v: unknown): string | undefined {
  const s = text(v);
  const m = s && /^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(s);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}` : undefined;
}

function offset(v: unknown): string | undefined {
  const s = text(v);
  return s && /^[+-]\d{2}:\d{2}$/.test(s) ? s : undefined;
}

function dms(v: unknown, ref: unknown, negative: string): number | undefined {
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    return undefined;
  }
  const [d, m, s] = v as [number, number, number];
  const value = d + m / 60 + s / 3600;
  return typeof ref === 'string' && ref.trim().toUpperCase() === negative ? -value : value;
}

/**
 * Where a container's EXIF is read from. exifr parses JPEG, PNG and TIFF files itself (a HEIC is
 * converted to a JPEG that keeps its EXIF first). It does not parse WebP (RIFF) and misreads AVIF,
 * so for those the EXIF block the decoder found (sharp's `metadata().exif`) is parsed instead. GIF
 * has no EXIF: nothing is read and nothing is warned about.
 */
export type ExifLocation = 'file' | 'block' | 'none';

export function exifLocation(mime: string): ExifLocation {
  switch (mime) {
    case 'image/webp':
    case 'image/avif':
      return 'block';
    case 'image/gif':
      return 'none';
    default:
      return 'file';
  }
}

/** The EXIF of a file of type `mime`; `block` gives the container's raw EXIF block when asked. */
export async function readExifOf(
  mime: string,
  input: Buffer,
  block: () => Promise<Buffer | undefined>,
): Promise<ExifResult> {
  switch (exifLocation(mime)) {
    case 'none':
      return { exif: null, gps: null };
    case 'block': {
      let raw: Buffer | undefined;
      try {
        raw = await block();
      } catch {
        raw = undefined; // an unreadable header: rendering reports it
      }
      return raw === undefined ? { exif: null, gps: null } : readExifBlock(raw);
    }
    case 'file':
      return readExif(input);
  }
}

/**
 * An EXIF block as containers store it: a TIFF structure (`II*\0` or `MM\0*`), often behind an
 * `Exif\0\0` marker (WebP and AVIF writers differ), which is skipped.
 */
export async function readExifBlock(raw: Buffer): Promise<ExifResult> {
  const head = raw.subarray(0, 16);
  const at = [head.indexOf('II*\0', 0, 'latin1'), head.indexOf('MM\0*', 0, 'latin1')].filter((i) => i >= 0);
  if (at.length === 0) {
    return {
      exif: null,
      gps: null,
      warning: 'The EXIF metadata could not be read: no TIFF header in the EXIF block',
    };
  }
  return readExif(raw.subarray(Math.min(...at)));
}

/** EXIF summary and GPS from a file exifr understands (JPEG, PNG, TIFF; a bare TIFF EXIF block). */
export async function readExif(input: Buffer): Promise<ExifResult> {
  let tags: Record<string, unknown> | undefined;
  try {
    tags = (await exifr.parse(input, OPTIONS)) as Record<string, unknown> | undefined;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { exif: null, gps: null, warning: `The EXIF metadata could not be read: ${why.slice(0, 200)}` };
  }
  if (!tags) return { exif: null, gps: null };

  const summary: NonNullable<ExifResult['exif']> = {
    make: text(tags.Make),
    model: text(tags.Model),
    lens: text(tags.LensModel) ?? text(tags.LensMake),
    exposureTime: num(tags.ExposureTime),
    fNumber: num(tags.FNumber),
    iso: num(tags.ISO) ?? num(tags.ISOSpeedRatings),
    focalLength: num(tags.FocalLength),
    dateTimeOriginal: dateTime(tags.DateTimeOriginal),
    offsetTimeOriginal: offset(tags.OffsetTimeOriginal),
  };
  const exif = Object.fromEntries(Object.entries(summary).filter(([, v]) => v !== undefined)) as NonNullable<
    ExifResult['exif']
  >;

  let gps: ExifResult['gps'] = null;
  const latitude = dms(tags.GPSLatitude, tags.GPSLatitudeRef, 'S');
  const longitude = dms(tags.GPSLongitude, tags.GPSLongitudeRef, 'W');
  if (
    latitude !== undefined &&
    longitude !== undefined &&
    Math.abs(latitude) <= 90 &&
    Math.abs(longitude) <= 180 &&
    !(latitude === 0 && longitude === 0)
  ) {
    gps = { latitude, longitude };
    const alt = num(tags.GPSAltitude);
    if (alt !== undefined) gps.altitude = tags.GPSAltitudeRef === 1 ? -alt : alt;
  }
  return { exif: Object.keys(exif).length > 0 ? exif : null, gps };
}

/** The {@link ExifReader} port over exifr. */
export const exifrReader: ExifReader = { read: readExifOf };
