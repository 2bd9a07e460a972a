import type { FastifyReply, FastifyRequest } from 'fastify'
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino'

/**
 * Logging with PHI kept out by construction: Fastify's automatic request logging is off and the
 * request/response serializers keep only method and route pattern, so bodies, query strings and
 * headers are never logged. `redact` is the second line of defence for anything a handler passes
 * to the logger by mistake.
 */
export const REDACTED_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["idempotency-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'cookie',
  'req.body',
  'req.query',
  'res.body',
  'body',
  'query',
  'token',
  '*.token',
  'password',
  '*.password',
  'phi',
  '*.phi',
  'patient',
  '*.patient',
  '*.*.patient',
  'reason',
  '*.reason',
  'message',
  '*.message',
  'messages',
  '*.messages',
  'notes',
  '*.notes',
  'outcomeNote',
  '*.outcomeNote',
  'attachments',
  '*.attachments',
  'healthNumber',
  '*.healthNumber',
  'dateOfBirth',
  '*.dateOfBirth',
  'contact',
  '*.contact',
]

export interface LoggerSettings {
  readonly level: string
  /** Where log lines go (default stdout); tests pass a stream to inspect the output. */
  readonly stream?: DestinationStream
}

export const loggerOptions = (level: string): LoggerOptions => ({
  level,
  redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
  serializers: {
    req: (req: { method?: string; routeOptions?: { url?: string } }) => ({
      method: req.method,
      route: req.routeOptions?.url,
    }),
    res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    err: pino.stdSerializers.errWithCause,
  },
  base: { service: 'referrals-http' },
  timestamp: pino.stdTimeFunctions.isoTime,
})

export const createLogger = (settings: LoggerSettings): Logger =>
  settings.stream === undefined
    ? pino(loggerOptions(settings.level))
    : pino(loggerOptions(settings.level), settings.stream)

/**
 * The `onResponse` hook writing one line per request: method, route pattern (never the raw URL,
 * whose query string may carry PHI), status, duration, user id and correlation id.
 */
export const requestLogHook = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
  request.log.info(
    {
      method: request.method,
      route: request.routeOptions.url ?? '(unmatched)',
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
      ...(request.actor?.kind === 'user' ? { userId: request.actor.userId } : {}),
    },
    'request completed',
  )
}
