import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route's JSON body may be left out (`complete`, `cancel`, `retry-processing`): an empty
     * body sent with `Content-Type: application/json` counts as none. Also marks the request body
     * optional in the OpenAPI document.
     */
    optionalBody?: boolean;
  }
}

/**
 * The JSON parser of the API: Fastify's own (prototype poisoning refused), except that on routes
 * whose body is optional an empty body is no body. Many clients send `content-type:
 * application/json` with nothing after it for a bodiless POST; elsewhere that stays `invalid_json`.
 */
export function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (request.routeOptions.config.optionalBody === true && (body as string).trim() === '') {
      done(null, undefined);
      return;
    }
    void parse(request, body as string, done);
  });
}
