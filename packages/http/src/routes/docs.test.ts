import { Ajv2020 } from 'ajv/dist/2020.js'
import { afterEach, describe, expect, it } from 'vitest'
import { buildTestApp, type TestApp } from '../testing.js'
import { demoRoutes, demoState } from '../testing-demo.js'

const ID = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$', maxLength: 128 }

/** Every `schema` object anywhere in the document. */
const schemasIn = (node: unknown, found: unknown[] = []): unknown[] => {
  if (Array.isArray(node)) for (const item of node) schemasIn(item, found)
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'schema') found.push(value)
      else schemasIn(value, found)
    }
  }
  return found
}

describe('OpenAPI document', () => {
  let current: TestApp | undefined
  afterEach(async () => {
    await current?.app.close()
  })

  it('is served publicly at /openapi.json as OpenAPI 3.1 with the demo route schemas generated from its codecs', async () => {
    current = await buildTestApp({ registerRoutes: demoRoutes(demoState()) })
    const res = await current.app.inject({ method: 'GET', url: '/openapi.json' })
    expect(res.statusCode).toBe(200)
    const doc = res.json()
    expect(doc.openapi).toBe('3.1.0')
    expect(typeof doc.info.title).toBe('string')
    expect(typeof doc.info.version).toBe('string')
    expect(doc.components.securitySchemes.bearerAuth).toEqual({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    })

    const create = doc.paths['/demo/items'].post
    expect(create.operationId).toBe('createDemoItem')
    expect(create.security).toEqual([{ bearerAuth: [] }])
    expect(create.requestBody.content['application/json'].schema).toEqual({
      type: 'object',
      properties: {
        name: { type: 'string' },
        quantity: { type: 'integer' },
        kind: { type: 'string', enum: ['box', 'bag'] },
        dueAt: {
          type: ['string', 'null'],
          format: 'date-time',
          description: 'UTC instant with millisecond precision, e.g. 2026-01-31T12:00:00.000Z',
        },
        patient: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
      },
      required: ['name', 'quantity', 'kind', 'dueAt'],
    })
    expect(create.responses['201'].content['application/json'].schema.properties.id).toEqual(ID)
    expect(create.responses['4XX'].content['application/problem+json'].schema).toEqual({
      $ref: '#/components/schemas/Problem',
    })
    expect(doc.components.schemas.Problem.required).toEqual(['type', 'title', 'status', 'code'])

    const read = doc.paths['/demo/items/{id}'].get
    expect(read.parameters).toContainEqual({ schema: ID, in: 'path', name: 'id', required: true })
    const list = doc.paths['/demo/items'].get
    expect(list.parameters).toContainEqual({
      schema: { type: 'integer' },
      in: 'query',
      name: 'limit',
      required: false,
    })

    expect(doc.paths['/health'].get.security).toEqual([])
    expect(doc.paths['/openapi.json']).toBeUndefined()

    // Every operation answers something, and every schema is valid JSON Schema 2020-12.
    for (const [path, item] of Object.entries(
      doc.paths as Record<string, Record<string, { responses?: object }>>,
    )) {
      for (const [method, operation] of Object.entries(item)) {
        expect({ path, method, hasResponses: Object.keys(operation.responses ?? {}).length > 0 }).toEqual({
          path,
          method,
          hasResponses: true,
        })
      }
    }
    const ajv = new Ajv2020({ strict: false })
    ajv.addKeyword('discriminator')
    const schemas = schemasIn(doc.paths)
    expect(schemas.length).toBeGreaterThan(10)
    for (const schema of schemas) expect(ajv.validateSchema(schema as object)).toBe(true)
  })

  it('serves Swagger UI at /docs without a token', async () => {
    current = await buildTestApp({ registerRoutes: demoRoutes(demoState()) })
    const res = await current.app.inject({ method: 'GET', url: '/docs' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.body).toContain('swagger')
  })

  it('points the explore box of /docs at /openapi.json, not at /docs/json', async () => {
    current = await buildTestApp({ registerRoutes: demoRoutes(demoState()) })
    const res = await current.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })
    expect(res.statusCode).toBe(200)
    const explored = /url: resolveUrl\('([^']+)'\)/.exec(res.body)?.[1]
    // Swagger UI resolves it against the page's address, /docs/.
    expect(new URL(explored ?? '', 'http://localhost/docs/').pathname).toBe('/openapi.json')
  })
})
