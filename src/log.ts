import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, fd = 1): Logger {
  return pino(
    {
      level,
      base: { service: 'mediary' },
      serializers: {
        // Never log query strings (they carry URL signatures) or credentials.
        req: (req: { method?: string; url?: string; id?: string }) => ({
          id: req.id,
          method: req.method,
          url: req.url?.split('?')[0],
        }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', 'apiKey', 'password'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd, sync: fd === 2 }),
  );
}
