import { ConfigError, int, str, type Env } from './env.ts';

export interface MetricsSettings {
  metrics: MetricsConfig;
}

/**
 * Prometheus metrics (`GET /metrics`), off unless one of the two ways to reach them is set: a
 * listener of its own (METRICS_PORT, loopback by default: nothing public ever sees it), or the
 * API's own port behind a bearer token (METRICS_TOKEN: for platforms with one port).
 */
export interface MetricsConfig {
  /** Serve /metrics on a listener of its own (serve and `mediary worker`); undefined: none. */
  listener: { host: string; port: number } | undefined;
  /**
   * Bearer token /metrics asks for: on the API's port (the route exists only when this is set)
   * and on the metrics listener too.
   */
  token: string | undefined;
}

/** Whether metrics are collected at all (somewhere serves them). */
export const metricsEnabled = (m: MetricsConfig): boolean =>
  m.listener !== undefined || m.token !== undefined;

/** METRICS_PORT, METRICS_HOST, METRICS_TOKEN. */
export function metricsSettings(env: Env): MetricsSettings {
  const token = str(env, 'METRICS_TOKEN');
  if (token !== undefined && token.length < 32) {
    throw new ConfigError('METRICS_TOKEN', 'must be at least 32 characters');
  }
  const port = str(env, 'METRICS_PORT');
  return {
    metrics: {
      listener:
        port === undefined
          ? undefined
          : { host: str(env, 'METRICS_HOST') ?? '127.0.0.1', port: int(env, 'METRICS_PORT', 0, 0, 65535) },
      token,
    },
  };
}
