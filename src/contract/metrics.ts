/** `GET /metrics` (only with METRICS_TOKEN): Prometheus' text exposition format, not JSON. */
import { Type } from '@sinclair/typebox';

export const MetricsText = Type.String({
  description: 'Prometheus text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4).',
});
