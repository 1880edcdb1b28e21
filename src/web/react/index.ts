/**
 * `mediary/react`: thin React bindings over the web components and the SDK. React is an optional
 * peer dependency of the package: only this entry imports it, and the web-component entry never
 * imports this one, so an app without React never bundles it.
 */
import {
  createElement,
  forwardRef,
  useCallback,
  useEffect,
  useImperativeHandle,
  useRef,
  useState,
  type CSSProperties,
  type ForwardedRef,
} from 'react';
import {
  uploadFile,
  type Progress,
  type UploadOptions,
  type UploadResult,
  type UploadTask,
} from '../../client/index.ts';
import '../elements/index.ts';
import type { MediaryImage as ImageElement } from '../elements/image.ts';
import type { RenderableMedia } from '../elements/media-types.ts';
import type { MediaryUploader as UploaderElement } from '../elements/uploader.ts';
import type { MediaryVideo as VideoElement } from '../elements/video.ts';

export { configure } from '../elements/connection.ts';

export interface UseUpload {
  /** Starts uploading a file (a new call replaces the current upload's state). */
  upload(file: Blob): Promise<UploadResult>;
  progress: Progress | undefined;
  result: UploadResult | undefined;
  error: Error | undefined;
  uploading: boolean;
  paused: boolean;
  pause(): void;
  resume(): void;
  cancel(): void;
}

/** One upload at a time through the SDK, with its progress as React state. */
export function useUpload(options: Omit<UploadOptions, 'onProgress' | 'signal'>): UseUpload {
  const [progress, setProgress] = useState<Progress>();
  const [result, setResult] = useState<UploadResult>();
  const [error, setError] = useState<Error>();
  const [uploading, setUploading] = useState(false);
  const [paused, setPaused] = useState(false);
  const task = useRef<UploadTask | undefined>(undefined);
  const abort = useRef<AbortController | undefined>(undefined);
  const opts = useRef(options);
  opts.current = options;

  useEffect(() => () => abort.current?.abort(), []);

  const upload = useCallback(async (file: Blob) => {
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    setProgress(undefined);
    setResult(undefined);
    setError(undefined);
    setUploading(true);
    setPaused(false);
    const t = uploadFile(file, { ...opts.current, signal: controller.signal, onProgress: setProgress });
    task.current = t;
    try {
      const r = await t;
      if (abort.current === controller) setResult(r);
      return r;
    } catch (err) {
      if (abort.current === controller) setError(err instanceof Error ? err : new Error(String(err)));
      throw err;
    } finally {
      if (abort.current === controller) setUploading(false);
    }
  }, []);

  return {
    upload,
    progress,
    result,
    error,
    uploading,
    paused,
    pause: () => {
      task.current?.pause();
      setPaused(true);
    },
    resume: () => {
      task.current?.resume();
      setPaused(false);
    },
    cancel: () => abort.current?.abort(),
  };
}

interface Common {
  className?: string;
  style?: CSSProperties;
  server?: string;
  token?: UploadOptions['token'];
}

/** Sets properties (not attributes) and listens to events on a custom element, React 18 and 19 alike. */
function useElement<E extends HTMLElement>(
  ref: ForwardedRef<E>,
  props: Record<string, unknown>,
  events: Record<string, ((e: CustomEvent) => void) | undefined>,
) {
  const el = useRef<E>(null);
  useImperativeHandle(ref, () => el.current!, []);
  useEffect(() => {
    const node = el.current as unknown as Record<string, unknown> | null;
    if (!node) return;
    for (const [k, v] of Object.entries(props)) if (v !== undefined) node[k] = v;
  });
  useEffect(() => {
    const node = el.current;
    if (!node) return;
    const bound = Object.entries(events).filter(([, h]) => h) as [string, (e: CustomEvent) => void][];
    const listeners = bound.map(([type, h]) => [type, (e: Event) => h(e as CustomEvent)] as const);
    for (const [type, l] of listeners) node.addEventListener(type, l);
    return () => {
      for (const [type, l] of listeners) node.removeEventListener(type, l);
    };
  });
  return el;
}

export interface MediaryUploaderProps extends Common {
  accept?: string;
  cameraId?: string;
  label?: string;
  onUploadStart?: (detail: { file: File }) => void;
  onUploadComplete?: (detail: { file: File; result: UploadResult }) => void;
  onUploadError?: (detail: { file: File; error: unknown }) => void;
}

export const MediaryUploader = forwardRef<UploaderElement, MediaryUploaderProps>(function MediaryUploader(
  { className, style, onUploadStart, onUploadComplete, onUploadError, ...props },
  ref,
) {
  const el = useElement(ref, props as Record<string, unknown>, {
    'mediary-upload-start': onUploadStart && ((e) => onUploadStart(e.detail as { file: File })),
    'mediary-upload-complete':
      onUploadComplete && ((e) => onUploadComplete(e.detail as { file: File; result: UploadResult })),
    'mediary-upload-error':
      onUploadError && ((e) => onUploadError(e.detail as { file: File; error: unknown })),
  });
  return createElement('mediary-uploader', { ref: el, className, style });
});

export interface MediaryImageProps extends Common {
  media?: RenderableMedia;
  mediaId?: string;
  alt?: string;
  sizes?: string;
  fit?: 'cover' | 'contain';
}

export const MediaryImage = forwardRef<ImageElement, MediaryImageProps>(function MediaryImage(
  { className, style, ...props },
  ref,
) {
  const el = useElement(ref, props as Record<string, unknown>, {});
  return createElement('mediary-image', { ref: el, className, style });
});

export interface MediaryVideoProps extends Common {
  media?: RenderableMedia;
  mediaId?: string;
}

export const MediaryVideo = forwardRef<VideoElement, MediaryVideoProps>(function MediaryVideo(
  { className, style, ...props },
  ref,
) {
  const el = useElement(ref, props as Record<string, unknown>, {});
  return createElement('mediary-video', { ref: el, className, style });
});
