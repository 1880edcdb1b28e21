/** The media state machine and failure table (src/media/lifecycle.ts): pure data, no I/O. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  allows,
  canMove,
  failure,
  FAILURES,
  isFailureCode,
  MEDIA_STATUSES,
  statusGuard,
  TRANSITIONS,
  type MediaStatus,
  type TransitionName,
} from '../../src/media/lifecycle.ts';

const names = Object.keys(TRANSITIONS) as TransitionName[];

describe('media transitions', () => {
  test('a transition not in the table is refused: DELETED is final', () => {
    for (const to of MEDIA_STATUSES) assert.equal(canMove('DELETED', to), false, `DELETED → ${to}`);
    for (const name of names) assert.equal(allows(name, 'DELETED'), false, name);
  });

  test('a transition not in the table is refused: nothing goes back to PENDING, READY fails only by losing its bytes', () => {
    for (const from of MEDIA_STATUSES) assert.equal(canMove(from, 'PENDING'), false, `${from} → PENDING`);
    assert.deepEqual(
      names.filter((n) => allows(n, 'READY') && TRANSITIONS[n].to === 'FAILED'),
      ['loseBytes'],
    );
    assert.equal(canMove('PENDING', 'READY'), false);
    assert.equal(canMove('PENDING', 'PROCESSING'), false);
    assert.equal(canMove('FAILED', 'READY'), false);
    assert.equal(allows('complete', 'UPLOADED'), false);
    assert.equal(allows('failUpload', 'UPLOADED'), false);
    assert.equal(allows('finishProcessing', 'UPLOADED'), false);
    assert.equal(allows('retryProcessing', 'READY'), false);
  });

  test('the upload path is allowed step by step, and every live state can be deleted', () => {
    const path: [TransitionName, MediaStatus][] = [
      ['complete', 'PENDING'],
      ['startProcessing', 'UPLOADED'],
      ['startProcessing', 'PROCESSING'],
      ['finishProcessing', 'PROCESSING'],
    ];
    for (const [name, from] of path) assert.ok(allows(name, from), `${name} from ${from}`);
    for (const s of MEDIA_STATUSES.filter((s) => s !== 'DELETED')) assert.ok(canMove(s, 'DELETED'), s);
    assert.ok(canMove('FAILED', 'UPLOADED'));
  });

  test('every status but PENDING is reached by some transition', () => {
    const reached = new Set<MediaStatus>(Object.values(TRANSITIONS).map((t) => t.to));
    assert.deepEqual(
      MEDIA_STATUSES.filter((s) => !reached.has(s)),
      ['PENDING'],
    );
  });

  test('the SQL guard names exactly the allowed states', () => {
    assert.equal(statusGuard('startProcessing'), "status IN ('UPLOADED', 'PROCESSING')");
    assert.equal(statusGuard('failUpload', 'm.status'), "m.status IN ('PENDING')");
  });
});

describe('failure codes', () => {
  test('each has a public message', () => {
    for (const [code, spec] of Object.entries(FAILURES)) assert.ok(spec.message.length > 0, code);
  });

  test('only the attempt error is retried by the worker', () => {
    assert.deepEqual(
      Object.entries(FAILURES)
        .filter(([, s]) => s.retryable)
        .map(([c]) => c),
      ['processing_error'],
    );
  });

  test('failure() takes the table message unless given one', () => {
    assert.deepEqual(failure('cancelled'), { code: 'cancelled', message: 'The upload was cancelled.' });
    assert.deepEqual(failure('decode_failed', 'truncated'), { code: 'decode_failed', message: 'truncated' });
    assert.equal(isFailureCode('upload_expired'), true);
    assert.equal(isFailureCode('toString'), false);
  });
});
