/**
 * The uploader's row model (src/web/elements/upload-rows.ts): what is refused before any request,
 * and the status line a person reads while a file uploads.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Progress } from '../../src/client/index.ts';
import { describeRow, fractionOf, refusalFor, type Row } from '../../src/web/elements/upload-rows.ts';

const MiB = 1024 * 1024;
const limits = {
  allowedMimeTypes: ['image/jpeg', 'video/mp4'],
  maxImageBytes: 10 * MiB,
  maxVideoBytes: 100 * MiB,
};
const file = (name: string, bytes: number, type = '') => new File([new Uint8Array(bytes)], name, { type });

function row(patch: Partial<Row>): Row {
  return {
    id: 1,
    file: file('a.jpg', 1000, 'image/jpeg'),
    state: 'uploading',
    progress: undefined,
    retries: 0,
    message: '',
    task: undefined,
    abort: undefined,
    result: undefined,
    ...patch,
  };
}

function progress(patch: Partial<Progress>): Progress {
  return {
    phase: 'uploading',
    bytesHashed: 4 * MiB,
    bytesSent: 0,
    totalBytes: 4 * MiB,
    resumedBytes: 0,
    bytesPerSecond: 0,
    etaSeconds: null,
    partsDone: 0,
    partCount: 1,
    ...patch,
  };
}

describe('refused before any request', () => {
  test('a type the server does not take, named', () => {
    assert.equal(refusalFor(file('a.gif', 10, 'image/gif'), limits), 'This server does not take image/gif.');
  });

  test('the type comes from the name when the browser gives none', () => {
    assert.equal(refusalFor(file('clip.mp4', 10), limits), undefined);
    assert.equal(refusalFor(file('notes.xyz', 10), limits), 'This server does not take files of this type.');
  });

  test('each kind has its own size limit', () => {
    assert.equal(refusalFor(file('big.mp4', 20 * MiB, 'video/mp4'), limits), undefined);
    assert.equal(
      refusalFor(file('big.jpg', 20 * MiB, 'image/jpeg'), limits),
      'Too large: 20.0 MB; the limit is 10.0 MB.',
    );
  });

  test('an empty file', () => {
    assert.equal(refusalFor(file('e.jpg', 0, 'image/jpeg'), limits), 'The file is empty.');
  });

  test('nothing is refused while the limits are unknown', () => {
    assert.equal(refusalFor(file('a.gif', 0, 'image/gif'), undefined), undefined);
  });
});

describe('the status line', () => {
  test('sent share, sizes, resumed bytes and time left', () => {
    const r = row({
      progress: progress({ bytesSent: 3 * MiB, resumedBytes: 1 * MiB, bytesPerSecond: MiB, etaSeconds: 65 }),
    });
    assert.equal(fractionOf(r), 0.75);
    assert.equal(describeRow(r), '75% · 3.0 MB of 4.0 MB · resumed, 1.0 MB were already there · 1:05 left');
  });

  test('hashing shows its own share', () => {
    assert.equal(
      describeRow(row({ progress: progress({ phase: 'hashing', bytesHashed: MiB }) })),
      'Checking 25%',
    );
  });

  test('a paused row keeps its share', () => {
    assert.equal(
      describeRow(row({ state: 'paused', progress: progress({ bytesSent: 2 * MiB }) })),
      'Paused at 50%',
    );
  });

  test('a finished row is whole and says what a resume skipped', () => {
    const done = row({ state: 'done', result: { partsSkipped: 3 } as Row['result'] });
    assert.equal(fractionOf(done), 1);
    assert.equal(describeRow(done), 'Uploaded (resumed: 3 parts were already there)');
  });

  test('the states without progress', () => {
    assert.equal(describeRow(row({ state: 'queued' })), 'Waiting');
    assert.equal(describeRow(row({ state: 'uploading' })), 'Starting');
    assert.equal(describeRow(row({ state: 'rejected' })), 'Refused');
    assert.equal(describeRow(row({ state: 'failed' })), 'Failed');
    assert.equal(fractionOf(row({ state: 'queued' })), 0);
  });
});
