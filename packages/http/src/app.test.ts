import type { EventStore } from '@referrals/core'
import { left } from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import { afterEach, describe, expect, it } from 'vitest'
import { addressKey } from './app.js'
import { route } from './openapi/route.js'
import { buildTestApp, probeOnlyStore, type TestApp } from './testing.js'
import { demoRoutes, demoState } from './testing-demo.js'

const validItem = { name: 'Crutches', quantity: 2, kind: 'box', dueAt: null }

describe('buildApp', () => {
  let current: TestApp | undefined
  afterEach(async () => {
    await current?.app.close()
    current = undefined
  })
  const setup = async (options: Parameters<typeof buildTestApp>[0] = {}) => {
    const state = demoState()
    current = await buildTestApp({ registerRoutes: demoRoutes(state), ...options })
    const auth = { authorization: `Bearer ${await current.token({ userId: 'u-1' })}` }
    return { ...current, state, auth }
  }

  it('answers 400 with the path and expectation of each bad body field, changing nothing', async () => {
    const { app, auth, state } = await setup()
    const res = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: auth,
      payload: { name: 42, quantity: 1.5, kind: 'crate', dueAt: 'tomorrow' },
    })
    expect(res.statusCode).toBe(400)
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8')
    const problem = res.json()
    expect(problem.type).toBe('https://referrals.dev/problems/validation_failed')
    const paths = problem.errors.map((e: { path: string }) => e.path)
    expect(paths).toEqual(['body.name', 'body.quantity', 'body.kind', 'body.dueAt'])
    expect(problem.errors).toContainEqual({ path: 'body.dueAt', expected: '(Instant | null)' })
    expect(problem.errors).toContainEqual({ path: 'body.name', expected: 'string' })
    expect(res.body).not.toContain('crate')
    expect(res.body).not.toContain('tomorrow')
    expect(state.writes).toBe(0)
    expect(state.items.size).toBe(0)
  })

  it('answers 400 for bad params and query, naming the location', async () => {
    const { app, auth } = await setup()
    const badParam = await app.inject({ method: 'GET', url: '/demo/items/%20bad%20id', headers: auth })
    expect(badParam.statusCode).toBe(400)
    expect(badParam.json().errors).toEqual([{ path: 'params.id', expected: 'ReferralId' }])
    const badQuery = await app.inject({ method: 'GET', url: '/demo/items?limit=ten&kind=box', headers: auth })
    expect(badQuery.statusCode).toBe(400)
    expect(badQuery.json().errors).toEqual([{ path: 'query.limit', expected: 'IntFromQuery' }])
    expect(badQuery.body).not.toContain('ten')
    const good = await app.inject({ method: 'GET', url: '/demo/items?limit=10', headers: auth })
    expect(good.statusCode).toBe(200)
    expect(good.json()).toEqual([])
  })

  it('answers 400 problem for malformed JSON without quoting it', async () => {
    const { app, auth } = await setup()
    const res = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"name": "Jane Canary-Doe", oops',
    })
    expect(res.statusCode).toBe(400)
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(res.body).not.toContain('Canary')
  })

  it('decodes and encodes with the codecs: 201 with the created item, strict codecs drop unknown fields', async () => {
    const { app, auth } = await setup()
    const res = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: auth,
      payload: { ...validItem, extra: 'ignored' },
    })
    expect(res.statusCode).toBe(201)
    expect(res.json()).toEqual({ id: 'item-1', name: 'Crutches', quantity: 2, version: 1 })
    expect(res.headers.etag).toBe('W/"1"')
    expect(res.headers.location).toBe('/demo/items/item-1')
  })

  it('answers 413 problem for a body over the limit', async () => {
    const { app, auth, state } = await setup({ env: { BODY_LIMIT_BYTES: '1024' } })
    const res = await app.inject({
      method: 'POST',
      url: '/demo/items',
      headers: auth,
      payload: { ...validItem, name: 'x'.repeat(2000) },
    })
    expect(res.statusCode).toBe(413)
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(res.json().type).toBe('https://referrals.dev/problems/payload_too_large')
    expect(state.writes).toBe(0)
  })

  it('lets a route raise its own body limit', async () => {
    const { app, auth } = await setup({
      env: { BODY_LIMIT_BYTES: '1024' },
      registerRoutes: async (instance) => {
        route(instance, {
          method: 'POST',
          url: '/demo/large',
          operationId: 'postLarge',
          summary: 'Large body',
          tags: ['demo'],
          bodyLimit: 10_000,
          successStatus: 200,
          body: t.strict({ text: t.string }),
          response: t.strict({ length: t.number }),
          handler: async ({ body }) => ({ length: body.text.length }),
        })
      },
    })
    const res = await app.inject({
      method: 'POST',
      url: '/demo/large',
      headers: auth,
      payload: { text: 'x'.repeat(5000) },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ length: 5000 })
    const tooLarge = await app.inject({
      method: 'POST',
      url: '/demo/large',
      headers: auth,
      payload: { text: 'x'.repeat(20_000) },
    })
    expect(tooLarge.statusCode).toBe(413)
  })

  it('answers 429 problem with Retry-After once a user exceeds the rate limit', async () => {
    const { app, auth } = await setup({ env: { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW: '1m' } })
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) {
      statuses.push((await app.inject({ method: 'GET', url: '/demo/items', headers: auth })).statusCode)
    }
    expect(statuses).toEqual([200, 200, 200, 429])
    const limited = await app.inject({ method: 'GET', url: '/demo/items', headers: auth })
    expect(limited.statusCode).toBe(429)
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(limited.headers['retry-after']).toBeDefined()
    expect(limited.json().type).toBe('https://referrals.dev/problems/rate_limited')
  })

  it('throttles repeated authentication failures per address with 429, counting only failures', async () => {
    const { app } = await setup({ env: { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW: '1m' } })
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({
        method: 'GET',
        url: '/demo/items',
        headers: { authorization: 'Bearer x.y.z' },
      })
      statuses.push(res.statusCode)
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429])
    const blocked = await app.inject({ method: 'GET', url: '/demo/items' })
    expect(blocked.statusCode).toBe(429)
    expect(blocked.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(blocked.json().type).toBe('https://referrals.dev/problems/rate_limited')
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200)
  })

  it('never refuses a valid token because of failed logins from the same address', async () => {
    const { app, auth } = await setup({ env: { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '1m' } })
    const garbage = []
    for (let i = 0; i < 6; i++) {
      garbage.push(
        (
          await app.inject({
            method: 'GET',
            url: '/demo/items',
            headers: { authorization: 'Bearer garbage' },
          })
        ).statusCode,
      )
    }
    expect(garbage).toEqual([401, 401, 401, 401, 401, 429])
    const valid = await app.inject({ method: 'GET', url: '/demo/items', headers: auth })
    expect(valid.statusCode).toBe(200)
    // Still throttled for bad tokens; the valid request did not reset or consume the failure budget.
    const again = await app.inject({
      method: 'GET',
      url: '/demo/items',
      headers: { authorization: 'Bearer garbage' },
    })
    expect(again.statusCode).toBe(429)
  })

  it('counts failed authentications of IPv6 clients per /64', async () => {
    const { app } = await setup({ env: { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1m' } })
    const fail = async (remoteAddress: string) =>
      (
        await app.inject({
          method: 'GET',
          url: '/demo/items',
          headers: { authorization: 'Bearer garbage' },
          remoteAddress,
        })
      ).statusCode
    expect(await fail('2001:db8:1:2::1')).toBe(401)
    expect(await fail('2001:db8:1:2:ffff::9')).toBe(401)
    expect(await fail('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe(429)
    expect(await fail('2001:db8:1:3::1')).toBe(401)
    expect(await fail('192.0.2.1')).toBe(401)
  })

  it('keys addresses: IPv4 as is, IPv4-mapped as IPv4, IPv6 by /64', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7')
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7')
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(addressKey('2001:db8:0:0:1:2:3:4')).toBe('2001:db8:0:0::/64')
    expect(addressKey('2001:db8:a:b:c:d:e:f%eth0')).toBe('2001:db8:a:b::/64')
    expect(addressKey('::1')).toBe('0:0:0:0::/64')
    expect(addressKey('fe80::1:2:3.4.5.6')).toBe('fe80:0:0:0::/64')
    expect(addressKey('not-an-address')).toBe('not-an-address')
  })

  it('counts the rate limit per user, not per address', async () => {
    const { app, auth, token } = await setup({ env: { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1m' } })
    for (let i = 0; i < 2; i++) await app.inject({ method: 'GET', url: '/demo/items', headers: auth })
    expect((await app.inject({ method: 'GET', url: '/demo/items', headers: auth })).statusCode).toBe(429)
    const other = { authorization: `Bearer ${await token({ userId: 'u-2' })}` }
    expect((await app.inject({ method: 'GET', url: '/demo/items', headers: other })).statusCode).toBe(200)
  })

  it('sets security headers, no-store caching and a correlation id on every response', async () => {
    const { app, auth } = await setup()
    for (const res of [
      await app.inject({ method: 'GET', url: '/demo/items', headers: auth }),
      await app.inject({ method: 'GET', url: '/nowhere', headers: auth }),
      await app.inject({ method: 'GET', url: '/demo/items' }),
    ]) {
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(res.headers['strict-transport-security']).toMatch(/max-age=/)
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN')
      expect(res.headers['content-security-policy']).toContain("default-src 'self'")
      expect(res.headers['cache-control']).toBe('no-store')
      expect(res.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/)
    }
  })

  it('keeps a well-formed client correlation id and replaces a malformed one', async () => {
    const { app, auth } = await setup()
    const kept = await app.inject({
      method: 'GET',
      url: '/nowhere',
      headers: { ...auth, 'x-correlation-id': 'client-trace.42' },
    })
    expect(kept.headers['x-correlation-id']).toBe('client-trace.42')
    expect(kept.json().correlationId).toBe('client-trace.42')
    const replaced = await app.inject({
      method: 'GET',
      url: '/nowhere',
      headers: { ...auth, 'x-correlation-id': 'bad id <script>' },
    })
    expect(replaced.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('answers every error as problem+json', async () => {
    const { app, auth } = await setup()
    const responses = [
      await app.inject({ method: 'GET', url: '/nowhere', headers: auth }),
      await app.inject({ method: 'GET', url: '/demo/items' }),
      await app.inject({ method: 'GET', url: '/demo/items/item-9', headers: auth }),
      await app.inject({
        method: 'POST',
        url: '/demo/items',
        headers: { ...auth, 'content-type': 'application/xml' },
        payload: '<x/>',
      }),
      await app.inject({ method: 'POST', url: '/demo/fail', headers: auth, payload: { note: 'n' } }),
      await app.inject({
        method: 'POST',
        url: '/demo/domain-error',
        headers: auth,
        payload: { code: 'demo.invalid_state' },
      }),
      await app.inject({ method: 'POST', url: '/demo/store-error', headers: auth }),
    ]
    expect(responses.map((r) => r.statusCode)).toEqual([404, 401, 404, 415, 500, 422, 503])
    for (const res of responses) {
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8')
      const problem = res.json()
      expect(problem.status).toBe(res.statusCode)
      expect(problem.type).toMatch(/^https:\/\/referrals\.dev\/problems\//)
      expect(typeof problem.title).toBe('string')
      expect(problem.correlationId).toBe(res.headers['x-correlation-id'])
    }
    expect(responses[2]?.json().type).toBe('https://referrals.dev/problems/not_found')
    expect(responses[6]?.json().type).toBe('https://referrals.dev/problems/store.unavailable')
    expect(responses[6]?.body).not.toContain('ETIMEDOUT')
  })

  it('hides unexpected errors behind a generic 500 carrying the correlation id', async () => {
    const { app, auth, logs } = await setup()
    const res = await app.inject({
      method: 'POST',
      url: '/demo/fail',
      headers: auth,
      payload: { note: 'PHI-CANARY-7731' },
    })
    expect(res.statusCode).toBe(500)
    expect(res.json()).toEqual({
      type: 'https://referrals.dev/problems/internal',
      title: 'Internal server error',
      status: 500,
      code: 'internal',
      detail: 'Unexpected error; quote the correlation id when reporting it.',
      correlationId: res.headers['x-correlation-id'],
    })
    expect(res.body).not.toContain('PHI-CANARY-7731')
    expect(res.body).not.toContain('database said')
    expect(logs()).toContain(String(res.headers['x-correlation-id']))
    expect(logs()).not.toContain('PHI-CANARY-7731')
  })

  it('serves /health, and /ready only while the store answers', async () => {
    const { app } = await setup()
    const health = await app.inject({ method: 'GET', url: '/health' })
    expect(health.statusCode).toBe(200)
    expect(health.json()).toEqual({ status: 'ok' })
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toEqual({ status: 'ready' })
    await app.close()

    const broken: EventStore = {
      ...probeOnlyStore(),
      streamVersion: () => left({ _tag: 'StoreUnavailable', reason: 'unavailable', message: 'down' }),
    }
    const down = await setup({ store: broken })
    const notReady = await down.app.inject({ method: 'GET', url: '/ready' })
    expect(notReady.statusCode).toBe(503)
    expect(notReady.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(notReady.headers['retry-after']).toBeDefined()
  })

  it('answers /ready with 503 when the store hangs past the timeout', async () => {
    const hanging: EventStore = {
      ...probeOnlyStore(),
      streamVersion: () => () => new Promise(() => undefined),
    }
    const { app } = await setup({ store: hanging, readyTimeoutMs: 50 })
    const res = await app.inject({ method: 'GET', url: '/ready' })
    expect(res.statusCode).toBe(503)
  })
})
