/**
 * How the OpenAPI document is generated from the routes (@fastify/swagger). The route schemas say
 * nearly everything; this adds what Fastify's own route declarations cannot carry: path templates
 * for the two wildcard routes, the raw bodies of the upload routes, and the optional JSON bodies.
 */
import type { SwaggerOptions } from '@fastify/swagger';
import type { TSchema } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { HlsObjectPath, StorageObjectPath } from '../contract/index.ts';
import { Binary } from './schemas.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route reads the request body itself (any content type): documented as bytes. */
    rawBody?: boolean;
    /** A tus body (`application/offset+octet-stream`), read by the handler: documented as bytes. */
    tusBody?: boolean;
  }
}

const OPTIONAL_BODY = 'x-mediary-optional-body';

/** The non-null member of an optional body's `null | {…}` schema. */
function presentBody(body: unknown): unknown {
  const members = (body as { anyOf?: TSchema[] }).anyOf;
  return members?.find((m) => m.type !== 'null') ?? body;
}

export function swaggerOptions(config: Pick<Config, 'publicUrl'>): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Mediary API',
        version: '1',
        description:
          'Upload sessions, direct uploads, processing and signed delivery of images and videos. Every error is `{"error": {"code", "message", "details"?, "requestId"}}`; docs/CONTRACTS.md has the full contract.',
        license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' },
      },
      servers: [{ url: config.publicUrl, description: 'This installation (PUBLIC_URL).' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: ({ schema, url, route }) => {
      const doc: Record<string, unknown> = { ...schema };
      let path = url;
      if (url.endsWith('/hls/*')) {
        path = `${url.slice(0, -1)}:rendition/:file`;
        doc.params = HlsObjectPath;
      } else if (url.endsWith('/storage/*')) {
        path = `${url.slice(0, -1)}:key`;
        doc.params = StorageObjectPath;
      }
      if (route.config?.rawBody === true) {
        doc.body = Binary;
        doc.consumes = ['*/*'];
      }
      if (route.config?.tusBody === true) {
        doc.body = Binary;
        doc.consumes = ['application/offset+octet-stream'];
      }
      if (route.config?.optionalBody === true && doc.body !== undefined) {
        doc.body = presentBody(doc.body);
        doc[OPTIONAL_BODY] = true;
      }
      return { schema: doc, url: path };
    },
    // @fastify/swagger marks every request body required; the optional ones are not.
    transformObject: (documentObject) => {
      const doc = (documentObject as { openapiObject: { paths?: Record<string, Record<string, unknown>> } })
        .openapiObject;
      for (const item of Object.values(doc.paths ?? {})) {
        for (const op of Object.values(item) as Record<string, unknown>[]) {
          if (op[OPTIONAL_BODY] !== true) continue;
          delete op[OPTIONAL_BODY];
          (op.requestBody as { required: boolean }).required = false;
        }
      }
      return doc;
    },
  };
}
