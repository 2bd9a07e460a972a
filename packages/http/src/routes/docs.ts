import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { type JsonSchema, referenceNamedSchemas, schemaComponents } from '../openapi/io-ts-schema.js'
import { WILDCARD_NAME } from '../openapi/route.js'

export interface DocsOptions {
  readonly title?: string
  readonly version?: string
  readonly description?: string
  /** The `servers` entry: where clients reach the API (default `/`, the server the document came from). */
  readonly serverUrl?: string
}

/** The tags operations use, each declared once with a description. */
export const API_TAGS: readonly { readonly name: string; readonly description: string }[] = [
  { name: 'account', description: 'The signed-in user' },
  { name: 'practices', description: 'Clinics and specialist practices: members, settings, verification' },
  { name: 'catalog', description: 'Specialties and their categories' },
  {
    name: 'referrals',
    description: 'Sending, routing, answering and following referrals; lists, exports and attachments',
  },
  {
    name: 'reports',
    description:
      'Referral funnel, timings, wait times, fairness and attribution (no PHI; small cells suppressed)',
  },
  { name: 'audit', description: 'The PHI access log (platform auditors)' },
  {
    name: 'programs',
    description:
      'Referral programs: consent versions, referral links with attribution, incentive rules, funnel',
  },
  { name: 'fhir', description: 'FHIR R4 read-only export of referrals (application/fhir+json)' },
  { name: 'notifications', description: 'Notification preferences and undeliverable notifications' },
  { name: 'decision links', description: 'Accept/decline links sent in notifications (no token needed)' },
  { name: 'operations', description: 'Liveness and readiness probes' },
]

const DESCRIPTION = [
  'Healthcare referral engine: practices send referrals to specialists, or let the engine route them fairly across a pool; every change is an event with a verifiable audit trail.',
  '',
  '- Authentication: `Authorization: Bearer <JWT>` on every route except the probes, the documentation and decision links.',
  '- Errors are RFC 9457 problem details (`application/problem+json`, schema `Problem`); decode failures list `errors: [{ path, expected }]`.',
  '- POST requests accept `Idempotency-Key` (a retry with the same key answers the first response again).',
  '- Resources carry a weak `ETag`; send it back as `If-Match` on a change to get 412 instead of acting on a stale version.',
  '- Responses carry `X-Correlation-Id` and the rate-limit headers `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (429 with `Retry-After` beyond).',
].join('\n')

/** Renames Fastify's `*` wildcard to a named path parameter in the document (`/decision-links/{token}`). */
const namedWildcard = ({ schema, url }: { schema: unknown; url: string }) => {
  const s = (schema ?? {}) as Record<string, unknown>
  const name = s[WILDCARD_NAME]
  if (typeof name !== 'string') return { schema: s, url }
  const { [WILDCARD_NAME]: _dropped, ...rest } = s
  const params = rest.params as { properties?: Record<string, JsonSchema>; required?: string[] } | undefined
  const renamed =
    params?.properties === undefined
      ? params
      : {
          ...params,
          properties: Object.fromEntries(
            Object.entries(params.properties).map(([k, v]) => [k === '*' ? name : k, v]),
          ),
          required: (params.required ?? []).map((k) => (k === '*' ? name : k)),
        }
  return { schema: { ...rest, params: renamed }, url: url.replace(/\*$/, `:${name}`) }
}

/**
 * OpenAPI 3.1 document generated from the route schemas (which `route()` derives from the io-ts
 * codecs), served at `/openapi.json`, with Swagger UI at `/docs` (pointed at `/openapi.json`).
 * Named codecs become `components.schemas` and are referenced by `$ref`. Must be registered before
 * the routes it should describe.
 */
export const registerDocs = async (app: FastifyInstance, options: DocsOptions = {}): Promise<void> => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: options.title ?? 'Referral engine API',
        version: options.version ?? '0.1.0',
        description: options.description ?? DESCRIPTION,
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
        contact: { name: 'Referral engine maintainers' },
      },
      servers: [{ url: options.serverUrl ?? '/', description: 'This server' }],
      tags: API_TAGS.map((t) => ({ ...t })),
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
    transform: namedWildcard,
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject
      const withRefs = referenceNamedSchemas(documentObject.openapiObject) as Record<string, unknown> & {
        readonly components?: Record<string, unknown> & { readonly schemas?: Record<string, unknown> }
      }
      return {
        ...withRefs,
        components: {
          ...withRefs.components,
          schemas: { ...withRefs.components?.schemas, ...schemaComponents() },
        },
      } as typeof documentObject.openapiObject
    },
  })
  // Swagger UI, with its explore box on the documented address instead of its own `/docs/json`.
  await app.register(async (scope) => {
    scope.addHook('onSend', async (request, _reply, payload) =>
      request.url.startsWith('/docs/static/swagger-initializer.js') && typeof payload === 'string'
        ? payload.replace("resolveUrl('./json')", "resolveUrl('../openapi.json')")
        : payload,
    )
    await scope.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: false } })
  })
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger())
}
