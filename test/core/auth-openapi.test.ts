import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { call, freePort, startTestServer, type TestServer } from '../helpers/server.ts';

describe('users authenticated through a JWKS endpoint', () => {
  let t: TestServer;
  let jwks: Server;
  let privateKey: CryptoKey;
  before(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const port = await freePort();
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(port, '127.0.0.1', r));
    t = await startTestServer({
      JWT_SECRET: '',
      JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
      JWT_ISSUER: 'https://idp.test',
      JWT_AUDIENCE: 'mediary',
    });
  });
  after(async () => {
    await t?.close();
    jwks?.close();
  });

  const sign = (claims: { iss?: string; aud?: string }, key: CryptoKey = privateKey) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject('jwks-user')
      .setIssuer(claims.iss ?? 'https://idp.test')
      .setAudience(claims.aud ?? 'mediary')
      .setExpirationTime('5m')
      .sign(key);

  test('a token signed by the IdP key with the right issuer and audience is accepted', async () => {
    const ok = await call(t.api('/users/me/media'), {
      headers: { authorization: `Bearer ${await sign({})}` },
    });
    assert.equal(ok.status, 200, ok.text);
  });

  test('a wrong issuer or audience is 401', async () => {
    const wrongIss = await call(t.api('/users/me/media'), {
      headers: { authorization: `Bearer ${await sign({ iss: 'https://evil' })}` },
    });
    assert.equal(wrongIss.status, 401);
    const wrongAud = await call(t.api('/users/me/media'), {
      headers: { authorization: `Bearer ${await sign({ aud: 'other' })}` },
    });
    assert.equal(wrongAud.status, 401);
  });

  test('a token signed by another key is 401', async () => {
    const otherKey = (await generateKeyPair('ES256')).privateKey;
    const forged = await call(t.api('/users/me/media'), {
      headers: { authorization: `Bearer ${await sign({}, otherKey)}` },
    });
    assert.equal(forged.status, 401);
  });
});

describe('a JWKS outage', () => {
  // The key set is fetched on the first token (and cached), so this server starts with its IdP down.
  let t: TestServer;
  let jwksPort: number;
  let jwks: Server | undefined;
  let privateKey: CryptoKey;
  let jwk: Record<string, unknown>;
  const startJwks = async (status: number) => {
    jwks = createServer((_req, res) => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/json');
      res.end(status === 200 ? JSON.stringify({ keys: [jwk] }) : '{"error":"down"}');
    });
    await new Promise<void>((r) => jwks!.listen(jwksPort, '127.0.0.1', r));
  };
  const stopJwks = async () => {
    await new Promise<void>((r) => (jwks ? jwks.close(() => r()) : r()));
    jwks = undefined;
  };
  before(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwksPort = await freePort();
    t = await startTestServer({ JWT_SECRET: '', JWT_JWKS_URL: `http://127.0.0.1:${jwksPort}/jwks.json` });
  });
  after(async () => {
    await t?.close();
    await stopJwks();
  });
  const sign = (key: CryptoKey = privateKey) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject('u')
      .setExpirationTime('5m')
      .sign(key);
  const me = async (token: string) =>
    call(t.api('/users/me/media'), { headers: { authorization: `Bearer ${token}` } });

  test('an unreachable key set answers 503 with Retry-After, not 401', async () => {
    const refused = await me(await sign());
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.body.error.code, 'service_unavailable');
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
  });

  test('a failing key set answers 503 with Retry-After, not 401', async () => {
    await startJwks(502);
    const failing = await me(await sign());
    assert.equal(failing.status, 503, failing.text);
    assert.equal(failing.body.error.code, 'service_unavailable');
    assert.ok(Number(failing.headers.get('retry-after')) > 0);
    await stopJwks();
  });

  test('once the key set is back, valid tokens pass', async () => {
    await startJwks(200);
    const ok = await me(await sign());
    assert.equal(ok.status, 200, ok.text);
  });

  test('once the key set is back, forged and malformed tokens are 401', async () => {
    const forged = await me(await sign((await generateKeyPair('ES256')).privateKey));
    assert.equal(forged.status, 401, forged.text);
    const garbage = await me('not.a.jwt');
    assert.equal(garbage.status, 401, garbage.text);
  });
});

describe('OpenAPI document', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t?.close();
  });

  test('is generated from the route schemas and lists every endpoint with request and response schemas', async () => {
    const res = await call(t.api('/openapi.json'));
    assert.equal(res.status, 200);
    const doc = res.body as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            responses: Record<string, unknown>;
            requestBody?: unknown;
            parameters?: { name: string; in: string; required?: boolean }[];
          }
        >
      >;
    };
    assert.match(doc.openapi, /^3\./);
    const expected: [string, string][] = [
      ['/api/v1/media', 'post'],
      ['/api/v1/media/upload-session', 'post'],
      ['/api/v1/media/{id}', 'get'],
      ['/api/v1/media/{id}', 'delete'],
      ['/api/v1/media/{id}/status', 'get'],
      ['/api/v1/media/{id}/complete', 'post'],
      ['/api/v1/media/{id}/upload', 'put'],
      ['/api/v1/media/{id}/download', 'get'],
      ['/api/v1/devices/{deviceId}/media', 'get'],
      ['/api/v1/users/{userId}/media', 'get'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
    ];
    for (const [p, m] of expected) {
      const op = doc.paths[p]?.[m];
      assert.ok(op, `${m.toUpperCase()} ${p} documented`);
      assert.ok(Object.keys(op.responses).length > 0, `${p} has response schemas`);
    }
    assert.ok(doc.paths['/api/v1/media']!.post!.requestBody, 'request body schema documented');
    // Query parameters with a default are optional for clients generated from the document.
    for (const p of ['/api/v1/media/{id}/download', '/api/v1/media/{id}/variants/{name}']) {
      const mode = doc.paths[p]!.get!.parameters!.find((x) => x.in === 'query' && x.name === 'mode');
      assert.ok(mode, `${p} documents ?mode`);
      assert.notEqual(mode.required, true, `${p}: ?mode is optional`);
    }
  });
});
