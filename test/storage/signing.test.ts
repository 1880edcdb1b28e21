/**
 * The one signer of the four resources the API signs itself (upload, part, local storage GET,
 * HLS token): what a signature covers, for each resource and each claim.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../../src/errors.ts';
import {
  UrlSigner,
  type PathClaims,
  type ResourceClaims,
  type SignedParams,
  type SignedResource,
} from '../../src/storage/signing.ts';

const signer = new UrlSigner('k'.repeat(32));
const NOW = Date.parse('2026-12-01T12:00:00Z');
const EXP = NOW / 1000 + 60;
const MEDIA = '5b0c8a2e-0d1f-4e4c-9a53-3c1e0b6f7a10';
const OTHER = '9e2d4c1b-7a35-4f60-8b21-6d0e3f9a4c58';

interface Case<R extends SignedResource> {
  resource: R;
  claims: ResourceClaims[R];
  path: PathClaims[R];
  /** Each claim changed on its own, in the path or in the query. */
  tampered: Record<
    string,
    { path?: PathClaims[R]; query?: (q: SignedParams[R]) => Partial<SignedParams[R]> }
  >;
}
const cases = [
  {
    resource: 'upload',
    claims: { mediaId: MEDIA },
    path: { mediaId: MEDIA },
    tampered: { mediaId: { path: { mediaId: OTHER } } },
  } satisfies Case<'upload'>,
  {
    resource: 'part',
    claims: { mediaId: MEDIA, partNumber: 2, uploadId: 'up-1' },
    path: { mediaId: MEDIA, partNumber: 2 },
    tampered: {
      mediaId: { path: { mediaId: OTHER, partNumber: 2 } },
      partNumber: { path: { mediaId: MEDIA, partNumber: 3 } },
      uploadId: { query: (q) => ({ ...q, upload: 'up-2' }) },
    },
  } satisfies Case<'part'>,
  {
    resource: 'storage',
    claims: { key: 'media/a/original', contentType: 'image/jpeg', contentDisposition: 'inline' },
    path: { key: 'media/a/original' },
    tampered: {
      key: { path: { key: 'media/b/original' } },
      contentType: { query: (q) => ({ ...q, ct: 'text/html' }) },
      contentDisposition: { query: (q) => ({ ...q, cd: 'attachment' }) },
    },
  } satisfies Case<'storage'>,
  {
    resource: 'hls',
    claims: { mediaId: MEDIA, runId: 'run-1' },
    path: { mediaId: MEDIA },
    tampered: {
      mediaId: { path: { mediaId: OTHER } },
      runId: { query: (q) => ({ token: q.token.replace('.run-1.', '.run-2.') }) },
    },
  } satisfies Case<'hls'>,
] as const;

/** The error code a verification throws, or 'ok'. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    return err.code;
  }
}

/** Another value for the expiry, in the query or inside the token. */
function withExpiry<R extends SignedResource>(q: SignedParams[R], expires: number): Partial<SignedParams[R]> {
  if ('token' in q)
    return { token: q.token.replace(/^\d+/, String(expires)) } as unknown as Partial<SignedParams[R]>;
  return { ...q, expires: String(expires) };
}

for (const c of cases) {
  const { resource, claims, path } = c as Case<SignedResource>;
  const tampered = c.tampered as Case<SignedResource>['tampered'];
  describe(`signed ${resource}`, () => {
    const query = signer.sign(resource, claims, EXP);

    test('verifies, from the path and the query alone, to the claims it was signed for', () => {
      const verified = signer.verify(resource, path, query, NOW);
      assert.deepEqual(verified, { claims, expiresAt: EXP });
    });

    test('any claim changed → signature_invalid', () => {
      for (const [claim, t] of Object.entries(tampered)) {
        const q = t.query ? t.query(query) : query;
        assert.equal(
          outcome(() => signer.verify(resource, t.path ?? path, q, NOW)),
          'signature_invalid',
          claim,
        );
      }
    });

    test('a later expiry than signed → signature_invalid', () => {
      assert.equal(
        outcome(() => signer.verify(resource, path, withExpiry(query, EXP + 1), NOW)),
        'signature_invalid',
      );
    });

    test('past the signed expiry → signature_expired', () => {
      assert.equal(
        outcome(() => signer.verify(resource, path, query, EXP * 1000 + 1000)),
        'signature_expired',
      );
      assert.equal(
        outcome(() => signer.verify(resource, path, query, EXP * 1000)),
        'ok',
        'valid up to its expiry',
      );
    });

    test('another secret, a missing or malformed parameter → signature_invalid', () => {
      const other = new UrlSigner('j'.repeat(32));
      assert.equal(
        outcome(() => other.verify(resource, path, query, NOW)),
        'signature_invalid',
      );
      for (const name of Object.keys(query)) {
        const partial: Record<string, string> = { ...query };
        delete partial[name];
        assert.equal(
          outcome(() => signer.verify(resource, path, partial, NOW)),
          'signature_invalid',
          `no ${name}`,
        );
        partial[name] = 'x';
        assert.equal(
          outcome(() => signer.verify(resource, path, partial, NOW)),
          'signature_invalid',
          `bad ${name}`,
        );
      }
    });
  });
}

describe('signed resources', () => {
  test('a signature for one resource never holds for another, with the same ids and expiry', () => {
    const upload = signer.sign('upload', { mediaId: MEDIA }, EXP);
    const part = signer.sign('part', { mediaId: MEDIA, partNumber: 1, uploadId: 'u' }, EXP);
    const hls = signer.sign('hls', { mediaId: MEDIA, runId: 'r' }, EXP);
    const sigOf = (token: string) => token.slice(token.lastIndexOf('.') + 1);
    const attempts: [string, () => unknown][] = [
      [
        'upload as part',
        () => signer.verify('part', { mediaId: MEDIA, partNumber: 1 }, { ...upload, upload: 'u' }, NOW),
      ],
      ['part as upload', () => signer.verify('upload', { mediaId: MEDIA }, part, NOW)],
      [
        'hls as upload',
        () =>
          signer.verify('upload', { mediaId: MEDIA }, { expires: String(EXP), sig: sigOf(hls.token) }, NOW),
      ],
      [
        'upload as hls',
        () => signer.verify('hls', { mediaId: MEDIA }, { token: `${EXP}.r.${upload.sig}` }, NOW),
      ],
      [
        'upload as storage',
        () => signer.verify('storage', { key: `media/${MEDIA}/upload` }, { ...upload, ct: '', cd: '' }, NOW),
      ],
    ];
    for (const [what, attempt] of attempts) assert.equal(outcome(attempt), 'signature_invalid', what);
  });

  test('the HLS token names its expiry and run: <expires>.<runId>.<signature>', () => {
    const { token } = signer.sign('hls', { mediaId: MEDIA, runId: 'run-9' }, EXP);
    assert.match(token, new RegExp(`^${EXP}\\.run-9\\.[A-Za-z0-9_-]{43}$`));
  });

  test('the playback messages can be given', () => {
    assert.throws(
      () =>
        signer.verify('hls', { mediaId: MEDIA }, { token: 'nope' }, NOW, {
          invalid: 'The playback token is invalid.',
        }),
      { code: 'signature_invalid', message: 'The playback token is invalid.' },
    );
  });
});
