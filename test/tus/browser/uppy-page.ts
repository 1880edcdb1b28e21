/**
 * The Uppy test page (bundled by esbuild in test/tus/uppy.test.ts): a file input whose files go
 * to Uppy with its Tus plugin, pointed at Mediary's tus endpoint. The result is left on `window`.
 */
import Uppy from '@uppy/core';
import Tus from '@uppy/tus';

interface Run {
  endpoint: string;
  token: string;
}

declare global {
  interface Window {
    startUppy(run: Run): void;
    uppyResult?: { ok: boolean; uploadURL?: string | undefined; error?: string | undefined };
    uppyProgress: number[];
  }
}

window.uppyProgress = [];
window.startUppy = (run: Run) => {
  const uppy = new Uppy({ autoProceed: true });
  uppy.use(Tus, {
    endpoint: run.endpoint,
    headers: { authorization: `Bearer ${run.token}` },
    chunkSize: 1024 * 1024,
    retryDelays: [100, 300, 1000, 2000, 3000],
  });
  uppy.on('upload-progress', (_file, progress) => {
    window.uppyProgress.push(progress.bytesUploaded ?? 0);
  });
  uppy.on('complete', (result) => {
    const done = result.successful?.[0];
    const failed = result.failed?.[0];
    window.uppyResult = done
      ? { ok: true, uploadURL: done.uploadURL }
      : { ok: false, error: String(failed?.error ?? 'no file') };
  });
  const input = document.createElement('input');
  input.type = 'file';
  input.id = 'file';
  input.addEventListener('change', () => {
    for (const file of Array.from(input.files ?? [])) {
      uppy.addFile({ name: file.name, type: file.type, data: file, source: 'input' });
    }
  });
  document.body.append(input);
};
