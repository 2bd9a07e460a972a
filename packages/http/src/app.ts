import { randomUUID } from 'node:crypto'
import { isIPv4, isIPv6 } from 'node:net'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import type { EventStore } from '@referrals/core'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify'
import type { DestinationStream } from 'pino'
import { authenticationHook, type ResolveActor, type TokenVerifier, verifierFromConfig } from './auth.js'
import type { Config } from './config.js'
import { type IdempotencyStore, idempotencyHooks } from './idempotency.js'
import { createLogger, requestLogHook } from './logger.js'
import { httpProblem, notFoundHandler, ProblemError, problemErrorHandler } from './problem.js'
import { type DocsOptions, registerDocs } from './routes/docs.js'
import { registerHealthRoutes } from './routes/health.js'

export interface BuildAppOptions {
  readonly store: EventStore
  readonly config: Config
  /** Port: the actor (platform roles + practice memberships) of an authenticated user. */
  readonly resolveActor: ResolveActor
  /**
   * Where `Idempotency-Key` responses are kept. Responses may carry PHI: in production wrap the
   * store with `encryptedIdempotencyStore(store, masterKey)`.
   */
  readonly idempotencyStore: IdempotencyStore
  /** Token verification; default from `config.jwt` (PEM, JWKS URL, or the development key). */
  readonly verifyToken?: TokenVerifier
  /** Registers the resource routes (use `route()` from this package for each). */
  readonly registerRoutes?: (app: FastifyInstance) => Promise<void>
  /** Where log lines go (default stdout). */
  readonly logStream?: DestinationStream
  /** Clock for idempotency expiry (default: system time). */
  readonly now?: () => Date
  readonly idempotencyTtlMs?: number
  readonly readyTimeoutMs?: number
  readonly docs?: DocsOptions
}

export const CORRELATION_ID_HEADER = 'x-correlation-id'
const CORRELATION_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/

/** Routes reachable without a token: liveness, readiness and the API documentation. */
const PUBLIC_PREFIXES = ['/docs', '/openapi.json', '/health', '/ready']

/** A client-supplied correlation id is kept when it is a safe id, otherwise a new one is made. */
const correlationIdOf = (header: string | string[] | undefined): string =>
  typeof header === 'string' && CORRELATION_ID.test(header) ? header : randomUUID()

/** The eight 16-bit groups of an IPv6 address (zone id dropped, embedded IPv4 tail expanded). */
const ipv6Groups = (address: string): number[] | undefined => {
  let text = address.split('%')[0] ?? ''
  const tail = /:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text)
  if (tail?.[1] !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = tail[1].split('.').map(Number)
    text = `${text.slice(0, tail.index)}:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', rest] = text.split('::')
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)))
  const left = parse(head)
  const right = rest === undefined ? [] : parse(rest)
  const groups =
    rest === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right]
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff)
    ? groups
    : undefined
}

/**
 * The key under which an address is rate limited: an IPv4 address as is (also when IPv4-mapped),
 * an IPv6 address by its /64 prefix, since one client usually holds a whole /64 and could
 * otherwise rotate addresses to escape the per-address budgets.
 */
export const addressKey = (ip: string): string => {
  if (isIPv4(ip)) return ip
  if (!isIPv6(ip)) return ip
  const groups = ipv6Groups(ip)
  if (groups === undefined) return ip
  const [a, b, c, d, e, f, g, h] = groups
  if (
    a === 0 &&
    b === 0 &&
    c === 0 &&
    d === 0 &&
    e === 0 &&
    f === 0xffff &&
    g !== undefined &&
    h !== undefined
  )
    return `${g >> 8}.${g & 0xff}.${h >> 8}.${h & 0xff}`
  return `${groups
    .slice(0, 4)
    .map((n) => n.toString(16))
    .join(':')}::/64`
}

/**
 * The HTTP application: security headers, rate limiting (per user, or per IP before
 * authentication), body limit, `Cache-Control: no-store`, correlation ids, bearer
 * authentication, idempotency keys, problem+json errors, OpenAPI at `/openapi.json` and
 * `/docs`, and `/health` + `/ready`. Resource routes come in through `registerRoutes`.
 */
export const buildApp = async (options: BuildAppOptions): Promise<FastifyInstance> => {
  const { config } = options
  const app = Fastify({
    loggerInstance: createLogger({
      level: config.logLevel,
      ...(options.logStream === undefined ? {} : { stream: options.logStream }),
    }) as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    // Fastify's own request lines carry the raw URL (query strings may hold PHI): `requestLogHook` replaces them.
    logController: new Fastify.LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'correlationId',
    }),
    genReqId: (req) => correlationIdOf(req.headers[CORRELATION_ID_HEADER]),
    // Answered by the hook below instead, as a problem document.
    return503OnClosing: false,
  })

  app.setErrorHandler(problemErrorHandler)
  app.setNotFoundHandler(notFoundHandler)
  app.decorateRequest('actor', null)

  // onRequest order matters: correlation id and security headers first, so that even a 401 from
  // the authentication hook carries them; then authentication; then the per-user rate limit.

  // Once closing, new requests are refused and responses end their keep-alive connection, so
  // in-flight requests drain and the server can stop without waiting for idle clients.
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header(CORRELATION_ID_HEADER, request.id)
    if (closing) {
      throw new ProblemError(httpProblem('service_unavailable', 'The server is shutting down; retry.'), {
        connection: 'close',
      })
    }
  })
  await app.register(helmet, { global: true })
  await app.register(rateLimit, {
    global: true,
    max: config.rateLimit.max,
    timeWindow: config.rateLimit.windowMs,
    // Runs after authentication (route-level hooks follow the global ones), so a signed-in user
    // has one budget across addresses; anonymous requests are counted per IP.
    keyGenerator: (request) =>
      request.actor?.kind === 'user' ? `user:${request.actor.userId}` : `ip:${addressKey(request.ip)}`,
  })
  // Requests that fail authentication never reach the per-user limit, so failures are counted
  // per address (IPv6 per /64) separately. The count is only looked at when a token fails: a
  // client over the budget gets 429 instead of 401, but a token that verifies is always accepted.
  const failures = app.createRateLimit({
    max: config.rateLimit.max,
    timeWindow: config.rateLimit.windowMs,
    keyGenerator: (request) => `auth-failure:${addressKey(request.ip)}`,
  })
  const verify = options.verifyToken ?? (await verifierFromConfig(config))
  app.addHook(
    'onRequest',
    authenticationHook(verify, options.resolveActor, {
      publicPrefixes: PUBLIC_PREFIXES,
      failureLimiter: {
        recordFailure: async (request) => {
          const state = await failures(request)
          return !state.isAllowed && state.isExceeded ? 'blocked' : 'allowed'
        },
      },
    }),
  )

  app.addHook('onSend', async (_request, reply, payload) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
    if (closing) reply.header('connection', 'close')
    return payload
  })

  const idempotency = idempotencyHooks({
    store: options.idempotencyStore,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.idempotencyTtlMs === undefined ? {} : { ttlMs: options.idempotencyTtlMs }),
  })
  app.addHook('preHandler', idempotency.preHandler)
  app.addHook('onSend', idempotency.onSend)
  app.addHook('onResponse', idempotency.onResponse)
  app.addHook('onRequestAbort', idempotency.onRequestAbort)
  app.addHook('onResponse', requestLogHook)

  await registerDocs(app, options.docs)
  await registerHealthRoutes(app, {
    store: options.store,
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
  })
  if (options.registerRoutes !== undefined) await options.registerRoutes(app)
  await app.ready()
  return app
}

export interface CloseOptions {
  /** Stops the embedded PostgreSQL server, after the HTTP server and the stores are closed. */
  readonly stopEmbedded?: () => Promise<void>
  /** Closed after the HTTP server (event store, idempotency store, …). */
  readonly resources?: readonly { readonly close?: () => Promise<void> }[]
  /** After this long, connections still open are cut (default 10 s). */
  readonly timeoutMs?: number
}

/**
 * Stops accepting connections, lets in-flight requests finish (new ones get 503), then closes the
 * given resources and the embedded database. Returns whether the drain finished in time.
 */
export const closeGracefully = async (
  app: FastifyInstance,
  options: CloseOptions = {},
): Promise<'drained' | 'timed_out'> => {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timed_out'>((resolve) => {
    timer = setTimeout(() => resolve('timed_out'), options.timeoutMs ?? 10_000)
  })
  const outcome = await Promise.race([app.close().then(() => 'drained' as const), timedOut])
  clearTimeout(timer)
  if (outcome === 'timed_out') app.server.closeAllConnections()
  for (const resource of options.resources ?? []) await resource.close?.()
  await options.stopEmbedded?.()
  return outcome
}
