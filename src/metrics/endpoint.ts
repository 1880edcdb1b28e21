/**
 * Where /metrics is served: the metrics of one process (API server or `mediary worker`), and the
 * listener of their own (METRICS_PORT) that serves nothing else. Protection (docs/RUNBOOKS/
 * OPERATIONS.md "Metrics"): the listener binds to loopback unless METRICS_HOST says otherwise; with
 * METRICS_TOKEN every /metrics answer needs `Authorization: Bearer <token>`.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { metricsEnabled, StartupError, type MetricsConfig } from '../config.ts';
import { NO_METRICS, type Metrics } from './port.ts';
import { PrometheusMetrics, type PrometheusMetricsOptions } from './prometheus.ts';

export interface ProcessMetrics {
  /** What the code reports to ({@link NO_METRICS} when metrics are off). */
  recorder: Metrics;
  /** The registry to expose; undefined when metrics are off. */
  prometheus: PrometheusMetrics | undefined;
  token: string | undefined;
}

/** The metrics of this process: collected only when something serves them. */
export function processMetrics(config: MetricsConfig, opts: PrometheusMetricsOptions): ProcessMetrics {
  if (!metricsEnabled(config)) return { recorder: NO_METRICS, prometheus: undefined, token: undefined };
  const prometheus = new PrometheusMetrics(opts);
  return { recorder: prometheus, prometheus, token: config.token };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** `Authorization: Bearer <token>` names `token` (compared in constant time). No token set: true. */
export function authorizedForMetrics(authorization: string | undefined, token: string | undefined): boolean {
  if (token === undefined) return true;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}

export interface MetricsListener {
  /** http://host:port (the port chosen when METRICS_PORT=0). */
  url: string;
  close(): Promise<void>;
}

/** The listener of its own: `GET /metrics` and nothing else. */
export async function startMetricsListener(
  listen: { host: string; port: number },
  metrics: ProcessMetrics,
  logger: Logger,
): Promise<MetricsListener> {
  const prometheus = metrics.prometheus;
  if (!prometheus) throw new Error('metrics are off');
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (!authorizedForMetrics(req.headers.authorization, metrics.token)) {
      res
        .writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' })
        .end('unauthorized\n');
      return;
    }
    prometheus.expose().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        logger.error({ err }, 'metrics exposition failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed\n');
      },
    );
  });
  // Scrapes are short; a connection left open must not keep shutdown waiting.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new StartupError(
              `METRICS_PORT ${listen.port} on ${listen.host} is in use; stop what listens there or set METRICS_PORT to a free port`,
            )
          : err,
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const url = `http://${host}:${port}`;
  logger.info({ url: `${url}/metrics` }, 'metrics listener started');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
