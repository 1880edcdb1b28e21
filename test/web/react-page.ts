/** Test page for the React bindings (bundled by test/web/react.test.ts). */
import { createElement as h, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { MediaryUploader, useUpload } from '../../src/web/react/index.ts';

interface Props {
  server: string;
  token: string;
}

const done: string[] = [];
(globalThis as unknown as { uploaded: string[] }).uploaded = done;

function Hooked({ server, token }: Props) {
  const u = useUpload({ server, token, stateStore: null });
  const [picked, setPicked] = useState('');
  return h(
    'div',
    null,
    h('label', { htmlFor: 'hook-file' }, 'Upload with the hook'),
    h('input', {
      id: 'hook-file',
      type: 'file',
      onChange: (e: { target: HTMLInputElement }) => {
        const f = e.target.files?.[0];
        if (f) {
          setPicked(f.name);
          void u.upload(f).catch(() => undefined);
        }
      },
    }),
    h(
      'output',
      { id: 'hook-status' },
      u.result ? `done ${u.result.mediaId}` : u.progress ? u.progress.phase : picked,
    ),
  );
}

function App(props: Props) {
  return h(
    'main',
    null,
    h(MediaryUploader, {
      server: props.server,
      token: props.token,
      onUploadComplete: (d) => done.push(d.result.mediaId),
    }),
    h(Hooked, props),
  );
}

(globalThis as unknown as { start: (p: Props) => void }).start = (props) => {
  const root = document.createElement('div');
  document.body.append(root);
  createRoot(root).render(h(App, props));
};
