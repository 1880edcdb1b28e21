/**
 * `mediary/web`: framework-free web components over the SDK. Importing this module defines the
 * elements; import a single element's module (`mediary/web/uploader`) to get only that one.
 */
export { configure, type Connection } from './connection.ts';
export { MediaryUploader, type UploadLimits } from './uploader.ts';
export { MediaryImage } from './image.ts';
export { MediaryVideo } from './video.ts';
export { MediaryPreview } from './preview.ts';
export type { RenderableMedia, VariantView, HlsView } from './media-types.ts';
export { formatBytes, formatDuration } from './format.ts';
