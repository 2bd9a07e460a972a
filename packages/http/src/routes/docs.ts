import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

export interface DocsOptions {
  readonly title?: string
  readonly version?: string
  readonly description?: string
}

/**
 * OpenAPI 3.1 document generated from the route schemas (which `route()` derives from the io-ts
 * codecs), served at `/openapi.json`, with Swagger UI at `/docs`. Must be registered before the
 * routes it should describe.
 */
export const registerDocs = async (app: FastifyInstance, options: DocsOptions = {}): Promise<void> => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: options.title ?? 'Referral engine API',
        version: options.version ?? '0.1.0',
        description:
          options.description ??
          'Healthcare referral engine. Errors are RFC 9457 problem details (application/problem+json).',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: false } })
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger())
}
