import { createConfig, lintFromString } from '@redocly/openapi-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRoutesTestApp, type RoutesTestApp } from './testing-routes.js'

interface Operation {
  readonly operationId?: string
  readonly summary?: string
  readonly description?: string
  readonly tags?: readonly string[]
  readonly security?: readonly unknown[]
  readonly parameters?: readonly { readonly in: string; readonly name: string }[]
  readonly requestBody?: { readonly content: Record<string, unknown> }
  readonly responses: Record<
    string,
    { readonly headers?: Record<string, unknown>; readonly content?: unknown }
  >
}
interface Document {
  readonly info: { readonly license?: unknown; readonly contact?: unknown }
  readonly servers?: readonly unknown[]
  readonly tags?: readonly { readonly name: string; readonly description?: string }[]
  readonly paths: Record<string, Record<string, Operation>>
  readonly components: { readonly schemas: Record<string, unknown> }
}

const operationsOf = (doc: Document) =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ path, method, op })),
  )

/** The whole API (resource and notification routes), as `serve` has it. */
describe('the served OpenAPI document', () => {
  let fixture: RoutesTestApp
  let source: string
  let doc: Document
  beforeAll(async () => {
    fixture = await buildRoutesTestApp({ withNotifications: true })
    const res = await fixture.app.inject({ method: 'GET', url: '/openapi.json' })
    expect(res.statusCode).toBe(200)
    source = res.body
    doc = res.json()
  })
  afterAll(async () => {
    await fixture.app.close()
  })

  it('passes Redocly’s recommended rules with no error and no warning', async () => {
    const config = await createConfig({ extends: ['recommended'] })
    const problems = await lintFromString({ source, absoluteRef: 'openapi.json', config })
    expect(
      problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? ''}`),
    ).toEqual([])
  })

  it('names every operation once, with a declared tag, a summary and a readable description', () => {
    const declared = new Set((doc.tags ?? []).map((t) => t.name))
    const ids = operationsOf(doc).map(({ op }) => op.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    for (const { path, method, op } of operationsOf(doc)) {
      const where = `${method} ${path}`
      expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+$/)
      expect(op.tags?.length, where).toBeGreaterThan(0)
      for (const tag of op.tags ?? []) expect(declared.has(tag), `${where} tag ${tag}`).toBe(true)
      expect(op.summary, where).toBeTruthy()
      expect(op.description, where).toBeTruthy()
    }
    // No io-ts type strings (`Readonly<{| patient: …`) anywhere in the document.
    expect(source).not.toMatch(/Readonly<|\{\||\|\}/)
    expect(doc.info.license).toEqual({ name: 'Apache-2.0', identifier: 'Apache-2.0' })
    expect(doc.info.contact).toBeDefined()
    expect(doc.servers?.length).toBeGreaterThan(0)
  })

  it('has named schemas for bodies and views, one problem schema, public routes without security', () => {
    for (const name of [
      'SendReferralRequest',
      'DeclineReferralRequest',
      'ReferralSummary',
      'ReferralDetail',
      'ReferralPage',
      'Practice',
      'Specialty',
      'SpecialistSettings',
      'Attachment',
      'RoutingExplanation',
      'Problem',
    ])
      expect(doc.components.schemas[name], name).toBeDefined()
    const send = doc.paths['/referrals']?.post
    expect(send?.requestBody?.content['application/json']).toEqual({
      schema: { $ref: '#/components/schemas/SendReferralRequest' },
    })
    for (const { path, method, op } of operationsOf(doc)) {
      for (const [status, response] of Object.entries(op.responses))
        if (/^[45]/.test(status))
          expect(response.content, `${method} ${path} ${status}`).toEqual({
            'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } },
          })
      const isPublic = path === '/health' || path === '/ready' || path.startsWith('/decision-links')
      expect(op.security, `${method} ${path}`).toEqual(isPublic ? [] : [{ bearerAuth: [] }])
    }
  })

  it('declares the headers clients send and read, a named token parameter and the multipart upload', () => {
    const headerNames = (op: Operation | undefined) =>
      (op?.parameters ?? []).filter((p) => p.in === 'header').map((p) => p.name)
    const accept = doc.paths['/referrals/{referralId}/accept']?.post
    expect(headerNames(accept)).toEqual(expect.arrayContaining(['Idempotency-Key', 'If-Match']))
    expect(Object.keys(accept?.responses['200']?.headers ?? {})).toEqual(
      expect.arrayContaining(['ETag', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']),
    )
    expect(Object.keys(doc.paths['/referrals']?.post?.responses['201']?.headers ?? {})).toEqual(
      expect.arrayContaining(['ETag', 'Location', 'Idempotent-Replayed']),
    )
    expect(Object.keys(accept?.responses['4XX']?.headers ?? {})).toContain('Retry-After')

    expect(Object.keys(doc.paths).filter((p) => p.includes('*'))).toEqual([])
    const link = doc.paths['/decision-links/{token}']
    expect(link?.get?.parameters).toContainEqual(
      expect.objectContaining({ in: 'path', name: 'token', required: true }),
    )

    const upload = doc.paths['/referrals/{referralId}/attachments']?.post
    expect(upload?.requestBody?.content['multipart/form-data']).toEqual({
      schema: expect.objectContaining({
        type: 'object',
        properties: { file: expect.objectContaining({ type: 'string', format: 'binary' }) },
        required: ['file'],
      }),
    })
  })
})
