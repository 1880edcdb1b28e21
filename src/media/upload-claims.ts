import { AppError } from '../errors.ts';

/**
 * The uploads streaming into this process, by target (a media's original, or one part of a
 * multipart upload): at most one at a time each. A second PUT to the same target while the first
 * is still streaming is refused at once (409), instead of each holding a socket, a file descriptor
 * and a temp file of its own until one of them wins the create-only publish. Per process: behind a
 * load balancer two API instances could each take one, which the store's create-only publish
 * (single uploads) or part replacement (parts) still settles correctly.
 */
export class StreamingUploads {
  private readonly busy = new Set<string>();

  /** Claims `target`; call the returned function when its body is done (in every case). */
  claim(target: string): () => void {
    if (this.busy.has(target)) {
      throw new AppError(
        'upload_in_progress',
        'Another upload to this URL is still streaming; wait for its answer (or for it to time out) and retry.',
      );
    }
    this.busy.add(target);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.busy.delete(target);
    };
  }
}
