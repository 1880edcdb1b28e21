/**
 * A validating proxy: every request that passes through it, and the answer to it, is checked
 * against the service's own OpenAPI document (ajv over the document's schemas). Clients — curl
 * running the README, the SDK — are pointed at the proxy (and the server's PUBLIC_URL too, so the
 * signed URLs it hands out lead back through it); whatever the document does not describe is
 * recorded as a problem, with the operation that was hit.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS with a default export; NodeNext types it as the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

type Json = Record<string, unknown>;
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Json;
}
interface Operation {
  operationId?: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema?: Json }> };
  responses: Record<string, { content?: Record<string, { schema?: Json }> }>;
  security?: Record<string, string[]>[];
}
export interface OpenApiDocument {
  openapi: string;
  servers?: { url: string }[];
  security?: Record<string, string[]>[];
  paths: Record<string, Record<string, Operation>>;
}

export interface Exchange {
  method: string;
  url: string;
  operationId: string | undefined;
  status: number;
  /** The answer's body, when it was JSON. */
  json?: unknown;
}

/** `image/*` covers `image/png`; `*\/*` covers everything. */
function mediaRangeCovers(range: string, type: string): boolean {
  if (range === '*/*' || range === type) return true;
  return range.endsWith('/*') && type.startsWith(range.slice(0, -1));
}

function pickContent<T>(content: Record<string, T>, contentType: string): T | undefined {
  const keys = Object.keys(content);
  const exact = keys.find((k) => k === contentType);
  const covering = keys.filter((k) => mediaRangeCovers(k, contentType));
  const key = exact ?? covering.sort((a, b) => b.length - a.length)[0];
  return key === undefined ? undefined : content[key];
}

const isJson = (ct: string) => ct === 'application/json' || ct.endsWith('+json');

interface Route {
  template: string;
  regex: RegExp;
  names: string[];
  literals: number;
  item: Record<string, Operation>;
}

export class OpenApiChecker {
  private readonly routes: Route[];
  private readonly bodies = new Ajv({ strict: false, allErrors: true });
  private readonly params = new Ajv({ strict: false, allErrors: true, coerceTypes: true });
  private readonly compiled = new WeakMap<object, ValidateFunction>();

  constructor(readonly doc: OpenApiDocument) {
    addFormats(this.bodies);
    addFormats(this.params);
    this.routes = Object.entries(doc.paths).map(([template, item]) => {
      const names: string[] = [];
      const source = template
        .split('/')
        .map((seg) => {
          const m = /^\{([^}]+)\}$/.exec(seg);
          if (m) {
            names.push(m[1]!);
            return '([^/]+)';
          }
          if (/[{}*]/.test(seg)) throw new Error(`not a path template segment: ${seg} in ${template}`);
          return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        })
        .join('/');
      const literals = template.split('/').filter((s) => s !== '' && !s.startsWith('{')).length;
      return { template, regex: new RegExp(`^${source}$`), names, literals, item };
    });
    // A concrete path (`/media/upload-session`) wins over a templated one (`/media/{id}`).
    this.routes.sort((a, b) => b.literals - a.literals);
  }

  private validator(ajv: Ajv, schema: Json): ValidateFunction {
    let v = this.compiled.get(schema);
    if (!v) {
      v = ajv.compile(schema);
      this.compiled.set(schema, v);
    }
    return v;
  }

  private check(ajv: Ajv, schema: Json | undefined, value: unknown, where: string, problems: string[]) {
    if (!schema) return;
    const v = this.validator(ajv, schema);
    if (!v(value)) problems.push(`${where}: ${ajv.errorsText(v.errors)}`);
  }

  /** The operation for a request, and what in the request the document does not allow. */
  checkRequest(req: {
    method: string;
    url: string;
    headers: Record<string, string | string[] | undefined>;
    body: Buffer;
  }): { op: Operation | undefined; problems: string[] } {
    const problems: string[] = [];
    const url = new URL(req.url, 'http://x');
    const method = req.method.toLowerCase();
    let op: Operation | undefined;
    let pathParams: Record<string, string> = {};
    for (const r of this.routes) {
      const m = r.regex.exec(url.pathname);
      if (!m || !r.item[method]) continue;
      op = r.item[method];
      pathParams = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
      break;
    }
    if (!op) return { op, problems: [`no operation for ${req.method} ${url.pathname}`] };

    const declared = op.parameters ?? [];
    for (const p of declared) {
      let value: unknown;
      if (p.in === 'path') value = pathParams[p.name];
      else if (p.in === 'query') value = url.searchParams.get(p.name) ?? undefined;
      else if (p.in === 'header') value = req.headers[p.name.toLowerCase()];
      if (value === undefined) {
        if (p.required) problems.push(`missing required ${p.in} parameter ${p.name}`);
        continue;
      }
      const holder = { value };
      this.check(
        this.params,
        { type: 'object', properties: { value: p.schema ?? {} } },
        holder,
        `${p.in} ${p.name}`,
        problems,
      );
    }
    for (const name of url.searchParams.keys()) {
      if (!declared.some((p) => p.in === 'query' && p.name === name))
        problems.push(`undocumented query parameter ${name}`);
    }

    const contentType = String(req.headers['content-type'] ?? '')
      .split(',')[0]!
      .split(';')[0]!
      .trim()
      .toLowerCase();
    if (req.body.length === 0) {
      if (op.requestBody?.required) problems.push('the document requires a request body; none was sent');
    } else if (!op.requestBody) {
      problems.push('a request body was sent; the document describes none');
    } else {
      const media = pickContent(op.requestBody.content, contentType || 'application/octet-stream');
      if (!media) problems.push(`request content type ${contentType || '(none)'} is not in the document`);
      else if (isJson(contentType)) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(req.body.toString('utf8'));
        } catch {
          problems.push('request body is not JSON');
        }
        if (parsed !== undefined) this.check(this.bodies, media.schema, parsed, 'request body', problems);
      }
    }
    return { op, problems };
  }

  /** What in the answer the document does not allow. */
  checkResponse(
    op: Operation,
    req: { headers: Record<string, string | string[] | undefined> },
    res: { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer },
  ): string[] {
    const problems: string[] = [];
    const status = String(res.status);
    // Success and redirects must be declared one by one; `default` covers other errors only.
    const declared = op.responses[status] ?? (res.status >= 400 ? op.responses.default : undefined);
    if (!declared) return [`status ${status} is not in the document`];
    const security = op.security ?? this.doc.security ?? [];
    const anonymousAllowed = security.length === 0 || security.some((s) => Object.keys(s).length === 0);
    if (res.status < 400 && !anonymousAllowed && req.headers.authorization === undefined) {
      problems.push(`served ${status} without credentials, but the document requires them`);
    }
    const contentType = String(res.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim()
      .toLowerCase();
    if (!declared.content) {
      if (res.body.length > 0)
        problems.push(`status ${status} has a body (${contentType}); the document says none`);
      return problems;
    }
    const media = pickContent(declared.content, contentType);
    if (!media) {
      problems.push(`response content type ${contentType || '(none)'} for ${status} is not in the document`);
      return problems;
    }
    if (isJson(contentType)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(res.body.toString('utf8'));
      } catch {
        problems.push('response body is not JSON');
      }
      if (parsed !== undefined)
        this.check(this.bodies, media.schema, parsed, `response ${status} body`, problems);
    }
    return problems;
  }
}

function jsonOf(res: IncomingMessage, body: Buffer): unknown {
  const type = String(res.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();
  if (!isJson(type) || body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

export interface ValidatingProxy {
  url: string;
  port: number;
  /** Every exchange that went through, in order. */
  exchanges: Exchange[];
  /** `METHOD url (operationId) → status: problem` for everything the document did not describe. */
  problems: string[];
  setTarget(base: string, doc: OpenApiDocument): void;
  close(): Promise<void>;
}

/** A proxy on `port` (0: any); give it its target and document with setTarget once both exist. */
export async function startValidatingProxy(port = 0): Promise<ValidatingProxy> {
  let target: URL | undefined;
  let checker: OpenApiChecker | undefined;
  const proxy: ValidatingProxy = {
    url: '',
    port: 0,
    exchanges: [],
    problems: [],
    setTarget(base, doc) {
      target = new URL(base);
      checker = new OpenApiChecker(doc);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (!target || !checker) throw new Error('validating proxy has no target yet');
      const body = await readAll(req);
      const method = req.method ?? 'GET';
      const url = req.url ?? '/';
      const { op, problems } = checker.checkRequest({ method, url, headers: req.headers, body });
      const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
        const headers = { ...req.headers, host: target!.host };
        const out = httpRequest(target!, { method, path: url, headers }, resolve);
        out.on('error', reject);
        out.end(body);
      });
      const answer = await readAll(upstream);
      // A request the document forbids is a problem only when the service accepted it: refusing
      // it with a 4xx is what the document predicts (tests send bad requests on purpose).
      const refused = (upstream.statusCode ?? 0) >= 400 && (upstream.statusCode ?? 0) < 500;
      if (refused) problems.length = 0;
      if (op)
        problems.push(
          ...checker.checkResponse(op, req, {
            status: upstream.statusCode ?? 0,
            headers: upstream.headers,
            body: answer,
          }),
        );
      const status = upstream.statusCode ?? 502;
      proxy.exchanges.push({
        method,
        url,
        operationId: op?.operationId,
        status,
        json: jsonOf(upstream, answer),
      });
      for (const p of problems)
        proxy.problems.push(`${method} ${url.split('?')[0]} (${op?.operationId ?? '?'}) → ${status}: ${p}`);
      res.writeHead(status, upstream.headers);
      res.end(answer);
    })().catch((err: unknown) => {
      proxy.problems.push(`proxy failure on ${req.method} ${req.url}: ${String(err)}`);
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  proxy.port = (server.address() as AddressInfo).port;
  proxy.url = `http://127.0.0.1:${proxy.port}`;
  return proxy;
}
