import { PracticeId } from '@referrals/core'
import * as t from 'io-ts'
import { afterEach, describe, expect, it } from 'vitest'
import { buildTestApp, type TestApp } from '../testing.js'
import { route } from './route.js'

const Target = t.union([
  t.strict({ kind: t.literal('direct'), practiceId: PracticeId }),
  t.strict({ kind: t.literal('pooled') }),
])

describe('route()', () => {
  let current: TestApp | undefined
  afterEach(async () => {
    await current?.app.close()
  })

  const setup = async () => {
    const calls: unknown[] = []
    current = await buildTestApp({
      registerRoutes: async (app) => {
        route(app, {
          method: 'POST',
          url: '/referrals',
          operationId: 'sendTest',
          summary: 'Send',
          tags: ['test'],
          body: t.strict({ target: Target, tags: t.readonlyArray(t.string) }),
          response: t.strict({ accepted: t.boolean }),
          handler: async ({ body }) => {
            calls.push(body)
            // Extra fields are dropped by the strict response codec on the way out.
            return { accepted: true, internalNote: 'not for clients' } as { accepted: boolean }
          },
        })
        route(app, {
          method: 'GET',
          url: '/public/ping',
          operationId: 'ping',
          summary: 'Ping',
          tags: ['test'],
          public: true,
          response: t.strict({ pong: t.literal(true) }),
          handler: async () => ({ pong: true as const }),
        })
      },
    })
    const auth = { authorization: `Bearer ${await current.token({ userId: 'u-1' })}` }
    return { app: current.app, auth, calls }
  }

  it('reports a field inside the matching-shaped union member without the member index', async () => {
    const { app, auth, calls } = await setup()
    const res = await app.inject({
      method: 'POST',
      url: '/referrals',
      headers: auth,
      payload: { target: { kind: 'direct', practiceId: 'not valid!' }, tags: ['a', 2] },
    })
    expect(res.statusCode).toBe(400)
    const errors = res.json().errors as { path: string; expected: string }[]
    expect(errors).toContainEqual({ path: 'body.target.practiceId', expected: 'PracticeId' })
    expect(errors).toContainEqual({ path: 'body.tags.1', expected: 'string' })
    expect(errors.every((e) => !/\.\d+\.(kind|practiceId)/.test(e.path))).toBe(true)
    expect(calls).toEqual([])
  })

  it('reports a body of the wrong shape at the body itself', async () => {
    const { app, auth } = await setup()
    const res = await app.inject({
      method: 'POST',
      url: '/referrals',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '[1,2]',
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().errors.map((e: { path: string }) => e.path)).toEqual(['body'])
  })

  it('passes decoded input to the handler, answers 201 for POST and encodes with the response codec', async () => {
    const { app, auth, calls } = await setup()
    const res = await app.inject({
      method: 'POST',
      url: '/referrals',
      headers: auth,
      payload: { target: { kind: 'pooled', extra: 1 }, tags: [], unknown: 'dropped' },
    })
    expect(res.statusCode).toBe(201)
    expect(res.json()).toEqual({ accepted: true })
    expect(calls).toEqual([{ target: { kind: 'pooled' }, tags: [] }])
  })

  it('serves public routes without a token and others only with one', async () => {
    const { app } = await setup()
    const ping = await app.inject({ method: 'GET', url: '/public/ping' })
    expect(ping.statusCode).toBe(200)
    expect(ping.json()).toEqual({ pong: true })
    const denied = await app.inject({
      method: 'POST',
      url: '/referrals',
      payload: { target: { kind: 'pooled' }, tags: [] },
    })
    expect(denied.statusCode).toBe(401)
  })
})
