import { describeErrors } from '@referrals/core'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, HTTPMethods } from 'fastify'
import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { httpProblem, ProblemError } from '../problem.js'
import {
  defaultSchemaRegistry,
  type JsonSchema,
  namedJsonSchema,
  type SchemaRegistry,
  toJsonSchema,
} from './io-ts-schema.js'

/**
 * `route()` declares an endpoint once, from io-ts codecs: the codecs give the OpenAPI schema (via
 * Fastify's `schema`, read by `@fastify/swagger`) and decode the input. Fastify's own validator
 * and serializer are switched off for these routes — io-ts is the only validator, and responses
 * are encoded with the response codec and serialised with `JSON.stringify`.
 */
type Decoded<C> = C extends t.Mixed ? t.TypeOf<C> : undefined

export interface RouteInput<P, Q, B> {
  readonly params: Decoded<P>
  readonly query: Decoded<Q>
  readonly body: Decoded<B>
}

export interface RouteSpec<
  P extends t.Mixed | undefined,
  Q extends t.Mixed | undefined,
  B extends t.Mixed | undefined,
  R extends t.Mixed | undefined,
> {
  readonly method: HTTPMethods
  readonly url: string
  /** Stable, unique across the API: what generated clients name the call. */
  readonly operationId: string
  readonly summary: string
  /** Longer text; notes on authentication, idempotency and `If-Match` are added to it. */
  readonly description?: string
  /** Declared in the document's `tags` (see `docs.ts`). */
  readonly tags: readonly [string, ...string[]]
  /** No bearer token needed (health, docs). Every other route is authenticated. */
  readonly public?: boolean
  /** Overrides the app's body limit for this route (413 beyond). */
  readonly bodyLimit?: number
  readonly params?: P
  readonly query?: Q
  readonly body?: B
  /** The success response: its status (default 200, 201 for POST) and codec. */
  readonly response?: R
  readonly successStatus?: number
  readonly responseDescription?: string
  /**
   * Content type of a success response that is not JSON (CSV, HTML, a file); documented as a string.
   * With `response`: a JSON media type other than `application/json` (e.g. `application/fhir+json`),
   * documented with the response codec's schema and sent as the `Content-Type`.
   */
  readonly produces?: string
  /** Documents a `multipart/form-data` body with one file part `file` (described by this text); the handler reads it. */
  readonly multipartFile?: string
  /** The route honours `If-Match` (412 when stale); `'required'`: 428 without it. */
  readonly ifMatch?: boolean | 'required'
  /** The success response carries the resource's `ETag`. */
  readonly etag?: boolean
  /** The success response carries `Location` (of the created resource). */
  readonly location?: boolean
  /** The route reads PHI: documents `X-Purpose-Of-Use`. */
  readonly purposeOfUse?: boolean
  /**
   * Who may call the route, decided from the caller and the path parameters alone: it runs after
   * the path is decoded and before the query and body are, so a caller who may not use the route
   * learns that (403/404), not what a valid request would look like (400). Throws to refuse.
   */
  readonly authorize?: (request: FastifyRequest, params: Decoded<P>) => void | Promise<void>
  /** The OpenAPI name of the route's `*` wildcard parameter (Fastify names it `*`). */
  readonly wildcardName?: string
  /** Left out of the OpenAPI document: not part of the API (the dashboard's HTML and scripts). */
  readonly hide?: boolean
  readonly handler: (
    input: RouteInput<P, Q, B>,
    request: FastifyRequest,
    reply: FastifyReply,
  ) => Promise<R extends t.Mixed ? t.TypeOf<R> : unknown>
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set by `route({ public: true })`: the auth hook lets the request through without a token. */
    readonly public?: boolean
  }
}

/** The one problem schema every error response references (`components.schemas.Problem`). */
export const problemSchema: JsonSchema = namedJsonSchema('Problem', {
  type: 'object',
  description: 'RFC 9457 problem details (application/problem+json)',
  properties: {
    type: { type: 'string', format: 'uri', description: 'A stable URI per error code' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string', description: 'Machine-readable error code, e.g. referral.not_found' },
    detail: { type: 'string' },
    correlationId: { type: 'string', description: 'Quote it when reporting a problem' },
    errors: {
      type: 'array',
      description: 'Decode failures: where, and what was expected (never the value sent)',
      items: {
        type: 'object',
        properties: {
          path: { type: 'string', description: 'e.g. body.urgency or query.box' },
          expected: { type: 'string' },
        },
        required: ['path', 'expected'],
      },
    },
    details: {
      type: 'object',
      additionalProperties: { type: ['string', 'number', 'boolean'] },
    },
  },
  required: ['type', 'title', 'status', 'code'],
})

/** Header objects as Fastify's response schema takes them (`@fastify/swagger` moves `description` out). */
const RATE_LIMIT_HEADERS: Readonly<Record<string, JsonSchema>> = {
  'X-RateLimit-Limit': { type: 'integer', description: 'Requests allowed in the current window' },
  'X-RateLimit-Remaining': { type: 'integer', description: 'Requests left in the current window' },
  'X-RateLimit-Reset': { type: 'integer', description: 'Seconds until the window resets' },
}
const CORRELATION_HEADER: Readonly<Record<string, JsonSchema>> = {
  'X-Correlation-Id': {
    type: 'string',
    description: 'The request id (the client’s own X-Correlation-Id when it is a safe id)',
  },
}
const RETRY_AFTER: Readonly<Record<string, JsonSchema>> = {
  'Retry-After': {
    type: 'integer',
    description: 'Seconds to wait before retrying (429 rate limited, 409 idempotency key in flight, 503)',
  },
}

const problemResponse = (description: string): JsonSchema => ({
  description,
  headers: { ...CORRELATION_HEADER, ...RATE_LIMIT_HEADERS, ...RETRY_AFTER },
  content: { 'application/problem+json': { schema: problemSchema } },
})

const IDEMPOTENCY_KEY: JsonSchema = {
  type: 'string',
  minLength: 1,
  maxLength: 255,
  description:
    'Makes a retry safe: the same key with the same request answers the first response again (with Idempotent-Replayed: true); with another request 422. Keys are per user and kept 24 h.',
}
const IF_MATCH: JsonSchema = {
  type: 'string',
  description:
    'The ETag you read (or a list of them): the change is refused with 412 if the resource changed since.',
}
const PURPOSE_OF_USE: JsonSchema = {
  type: 'string',
  enum: ['treatment', 'operations', 'audit', 'patient_request', 'legal'],
  description: 'Why PHI is read, recorded in the access log (default treatment, audit for auditors)',
}

/** The OpenAPI parts of a route spec: the Fastify `schema` that `@fastify/swagger` reads. */
const documentation = (
  spec: RouteSpec<t.Mixed | undefined, t.Mixed | undefined, t.Mixed | undefined, t.Mixed | undefined>,
  registry: SchemaRegistry,
  successStatus: number,
): FastifySchema & Record<string, unknown> => {
  const idempotent = spec.method === 'POST' && spec.multipartFile === undefined
  const successHeaders: Record<string, JsonSchema> = { ...CORRELATION_HEADER, ...RATE_LIMIT_HEADERS }
  if (spec.etag === true)
    successHeaders.ETag = {
      type: 'string',
      description: 'Weak entity tag of the version; send it as If-Match',
    }
  if (spec.location === true)
    successHeaders.Location = { type: 'string', description: 'Path of the created resource' }
  if (idempotent)
    successHeaders['Idempotent-Replayed'] = {
      type: 'string',
      enum: ['true'],
      description:
        'Present when the response is the stored answer to an earlier request with this Idempotency-Key',
    }
  const description = spec.responseDescription ?? 'Success'
  const success: JsonSchema =
    spec.response !== undefined
      ? {
          description,
          headers: successHeaders,
          content: {
            [spec.produces ?? 'application/json']: { schema: toJsonSchema(spec.response, registry) },
          },
        }
      : spec.produces !== undefined
        ? {
            description,
            headers: successHeaders,
            content: { [spec.produces]: { schema: { type: 'string' } } },
          }
        : { description, headers: successHeaders, type: 'null' }

  const requestHeaders: Record<string, JsonSchema> = {}
  const requiredHeaders: string[] = []
  if (idempotent) requestHeaders['Idempotency-Key'] = IDEMPOTENCY_KEY
  if (spec.ifMatch !== undefined && spec.ifMatch !== false) {
    requestHeaders['If-Match'] = IF_MATCH
    if (spec.ifMatch === 'required') requiredHeaders.push('If-Match')
  }
  if (spec.purposeOfUse === true) requestHeaders['X-Purpose-Of-Use'] = PURPOSE_OF_USE

  const notes = [
    spec.public === true ? 'No token needed.' : 'Needs a bearer token.',
    ...(idempotent ? ['Send Idempotency-Key to retry safely.'] : []),
    ...(spec.multipartFile !== undefined ? ['Not replayable: Idempotency-Key is refused (400).'] : []),
    ...(spec.ifMatch === 'required'
      ? ['If-Match is required (428 without it, 412 when stale).']
      : spec.ifMatch === true
        ? ['Send If-Match with the ETag you read to get 412 instead of acting on a changed resource.']
        : []),
  ]
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    description: [spec.description ?? `${spec.summary}.`, notes.join(' ')].join('\n\n'),
    tags: [...spec.tags],
    security: spec.public === true ? [] : [{ bearerAuth: [] }],
    ...(spec.wildcardName === undefined ? {} : { [WILDCARD_NAME]: spec.wildcardName }),
    ...(spec.hide === true ? { hide: true } : {}),
    ...(spec.params === undefined ? {} : { params: toJsonSchema(spec.params, registry) }),
    ...(spec.query === undefined ? {} : { querystring: toJsonSchema(spec.query, registry) }),
    ...(spec.body === undefined ? {} : { body: toJsonSchema(spec.body, registry) }),
    ...(spec.multipartFile === undefined
      ? {}
      : {
          consumes: ['multipart/form-data'],
          body: {
            type: 'object',
            properties: { file: { type: 'string', format: 'binary', description: spec.multipartFile } },
            required: ['file'],
          },
        }),
    ...(Object.keys(requestHeaders).length === 0
      ? {}
      : {
          headers: {
            type: 'object',
            properties: requestHeaders,
            ...(requiredHeaders.length === 0 ? {} : { required: requiredHeaders }),
          },
        }),
    response: {
      [String(successStatus)]: success,
      '4xx': problemResponse('Client error (problem details)'),
      '5xx': problemResponse('Server error (problem details)'),
    },
  }
}

/** The operationId of a command route: the command's name, e.g. `AcceptReferral` → `acceptReferral`. */
export const operationIdOf = (command: string): string =>
  `${command.charAt(0).toLowerCase()}${command.slice(1)}`

/** Schema key read by the docs' transform: the OpenAPI name of the `*` path parameter. */
export const WILDCARD_NAME = 'x-wildcard-name'

/**
 * Reports a path as the client wrote it. io-ts puts the member index of an intersection or union
 * into the path (`query.0.box`). An intersection's members all read the same value, so the index
 * goes. A failed union is reported once per member: when a member failed as a whole (a scalar
 * union such as `Instant | null`) the union itself is reported; when it failed deeper (a field of
 * an object member), the field is kept without the member index.
 */
const withoutMemberIndices = (errors: t.Errors): t.Errors =>
  errors.map((error) => {
    const context: t.ContextEntry[] = []
    for (let i = 0; i < error.context.length; i++) {
      const entry = error.context[i]
      if (entry === undefined) continue
      context.push(entry)
      const tag = (entry.type as { _tag?: string })._tag
      const member = error.context[i + 1]
      if (tag === 'IntersectionType' && member !== undefined) {
        context.push({ ...member, key: '' })
        i += 1
        continue
      }
      if (tag !== 'UnionType') continue
      if (i + 2 >= error.context.length) break
      if (member !== undefined) context.push({ ...member, key: '' })
      i += 1
    }
    return { ...error, context }
  })

const decodePart = (codec: t.Mixed | undefined, input: unknown, location: string): unknown => {
  if (codec === undefined) return undefined
  const result = codec.decode(input)
  if (isLeft(result)) {
    const errors = describeErrors(withoutMemberIndices(result.left)).map((p) => ({
      path: p.path === '(root)' ? location : `${location}.${p.path}`,
      expected: p.expected,
    }))
    throw new ProblemError(
      httpProblem('validation_failed', `The request ${location} is invalid.`, { errors }),
    )
  }
  return result.right
}

const acceptAll = () => (data: unknown) => ({ value: data })
const stringify = () => (data: unknown) => JSON.stringify(data)

export interface RouteOptions {
  readonly registry?: SchemaRegistry
}

export const route = <
  P extends t.Mixed | undefined = undefined,
  Q extends t.Mixed | undefined = undefined,
  B extends t.Mixed | undefined = undefined,
  R extends t.Mixed | undefined = undefined,
>(
  app: FastifyInstance,
  spec: RouteSpec<P, Q, B, R>,
  options: RouteOptions = {},
): void => {
  const registry = options.registry ?? defaultSchemaRegistry
  const successStatus = spec.successStatus ?? (spec.method === 'POST' ? 201 : 200)
  const schema = documentation(spec as never, registry, successStatus)

  app.route({
    method: spec.method,
    url: spec.url,
    schema,
    config: { public: spec.public === true },
    ...(spec.bodyLimit === undefined ? {} : { bodyLimit: spec.bodyLimit }),
    validatorCompiler: acceptAll,
    serializerCompiler: stringify,
    // Decoding runs after authentication (onRequest) and body parsing, before idempotency
    // (preHandler), so a malformed request is rejected without touching any state.
    preValidation: async (request) => {
      const params = decodePart(spec.params, request.params, 'params') as Decoded<P>
      await spec.authorize?.(request, params)
      const input: RouteInput<P, Q, B> = {
        params,
        query: decodePart(spec.query, request.query, 'query') as Decoded<Q>,
        body: decodePart(spec.body, request.body, 'body') as Decoded<B>,
      }
      decodedInputs.set(request, input)
    },
    handler: async (request, reply) => {
      const input = decodedInputs.get(request) as RouteInput<P, Q, B>
      const result = await spec.handler(input, request, reply)
      // A handler that sent another representation itself (CSV) returns the reply.
      if (reply.sent || (result as unknown) === reply) return reply
      if (reply.statusCode === 200 && successStatus !== 200) reply.code(successStatus)
      if (spec.response === undefined) return reply.send()
      if (spec.produces !== undefined) reply.type(spec.produces)
      return reply.send(spec.response.encode(result))
    },
  })
}

const decodedInputs = new WeakMap<FastifyRequest, unknown>()

/** A query-string integer (query values arrive as strings); documented as `integer`. */
export const IntFromQuery = new t.Type<number, string, unknown>(
  'IntFromQuery',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u),
  (u, c) => {
    if (typeof u === 'string' && /^-?\d{1,15}$/.test(u)) return t.success(Number(u))
    return t.failure(u, c)
  },
  (n) => String(n),
)
