import { describeErrors } from '@referrals/core'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, HTTPMethods } from 'fastify'
import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { httpProblem, ProblemError } from '../problem.js'
import { defaultSchemaRegistry, type JsonSchema, type SchemaRegistry, toJsonSchema } from './io-ts-schema.js'

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
  readonly summary?: string
  readonly description?: string
  readonly tags?: readonly string[]
  readonly operationId?: string
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
  /** Other documented responses (problems are added automatically). */
  readonly responseDescription?: string
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

const problemSchema: JsonSchema = {
  type: 'object',
  description: 'RFC 9457 problem details (application/problem+json)',
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string' },
    detail: { type: 'string' },
    correlationId: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { path: { type: 'string' }, expected: { type: 'string' } },
        required: ['path', 'expected'],
      },
    },
  },
  required: ['type', 'title', 'status', 'code'],
}

/**
 * io-ts reports a failed union once per member, under the member's index. When a member failed as
 * a whole (a scalar union such as `Instant | null`), report the union itself; when it failed deeper
 * (a field of an object member), keep the field but drop the member index from the path.
 */
const simplifyUnionErrors = (errors: t.Errors): t.Errors =>
  errors.map((error) => {
    const context: t.ContextEntry[] = []
    for (let i = 0; i < error.context.length; i++) {
      const entry = error.context[i]
      if (entry === undefined) continue
      context.push(entry)
      if ((entry.type as { _tag?: string })._tag !== 'UnionType') continue
      if (i + 2 >= error.context.length) break
      const member = error.context[i + 1]
      if (member !== undefined) context.push({ ...member, key: '' })
      i += 1
    }
    return { ...error, context }
  })

const decodePart = (codec: t.Mixed | undefined, input: unknown, location: string): unknown => {
  if (codec === undefined) return undefined
  const result = codec.decode(input)
  if (isLeft(result)) {
    const errors = describeErrors(simplifyUnionErrors(result.left)).map((p) => ({
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
  const responses: Record<string, JsonSchema> = {
    [String(successStatus)]:
      spec.response === undefined
        ? { description: spec.responseDescription ?? 'Success', type: 'null' }
        : { description: spec.responseDescription ?? 'Success', ...toJsonSchema(spec.response, registry) },
    '4xx': {
      description: 'Client error (problem details)',
      content: { 'application/problem+json': { schema: problemSchema } },
    },
    '5xx': {
      description: 'Server error (problem details)',
      content: { 'application/problem+json': { schema: problemSchema } },
    },
  }
  const schema: FastifySchema & Record<string, unknown> = {
    ...(spec.summary === undefined ? {} : { summary: spec.summary }),
    ...(spec.description === undefined ? {} : { description: spec.description }),
    ...(spec.tags === undefined ? {} : { tags: [...spec.tags] }),
    ...(spec.operationId === undefined ? {} : { operationId: spec.operationId }),
    ...(spec.public === true ? {} : { security: [{ bearerAuth: [] }] }),
    ...(spec.params === undefined ? {} : { params: toJsonSchema(spec.params, registry) }),
    ...(spec.query === undefined ? {} : { querystring: toJsonSchema(spec.query, registry) }),
    ...(spec.body === undefined ? {} : { body: toJsonSchema(spec.body, registry) }),
    response: responses,
  }

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
      const input: RouteInput<P, Q, B> = {
        params: decodePart(spec.params, request.params, 'params') as Decoded<P>,
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
