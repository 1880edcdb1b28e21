/** The multipart protocol on the local backend (parts through the API's signed part route). */
import { after, before } from 'node:test';
import { MULTIPART_ENV, multipartProtocolSuite } from '../helpers/multipart-suite.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer(MULTIPART_ENV);
});
after(async () => {
  await t?.close();
});

multipartProtocolSuite('local', () => t);
