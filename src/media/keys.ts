import path from 'node:path';

/**
 * The original file name is metadata only: strip any path, control and bidi-override
 * characters, collapse whitespace, cap the length, never empty.
 */
export function sanitizeFileName(name: string): string {
  const base = path.posix.basename(name.replaceAll('\\', '/'));
  const cleaned = base
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069"]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^\.+/, '');
  const capped = [...cleaned].slice(0, 200).join('');
  return capped.length > 0 ? capped : 'file';
}

/** Extensions that name the same type as a catalog extension. */
const EXTENSION_ALIASES: Record<string, readonly string[]> = {
  jpg: ['jpeg', 'jpe', 'jfif'],
  heic: ['heif'],
  heif: ['heic'],
  mov: ['qt'],
};

/**
 * The name a download is saved under: the client's name, but with the extension of the type we
 * verified (`evil.html` declared and verified as JPEG saves as `evil.jpg`, never as a page).
 */
export function downloadName(fileName: string, ext: string): string {
  const dot = fileName.lastIndexOf('.');
  const current = dot > 0 ? fileName.slice(dot + 1).toLowerCase() : '';
  if (current === ext || EXTENSION_ALIASES[ext]?.includes(current)) return fileName;
  return `${dot > 0 ? fileName.slice(0, dot) : fileName}.${ext}`;
}

/** RFC 6266 Content-Disposition with an ASCII fallback and an RFC 5987 `filename*` for the rest. */
export function contentDisposition(kind: 'inline' | 'attachment', fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  const encoded = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase(),
  );
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
