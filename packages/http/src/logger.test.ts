import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from './logger.js'
import { buildTestApp, type TestApp } from './testing.js'
import { demoRoutes, demoState } from './testing-demo.js'

const CANARY = 'Jane-Canary-PHI-5521'

describe('logging', () => {
  let current: TestApp | undefined
  afterEach(async () => {
    await current?.app.close()
  })

  it('never writes PHI sent in bodies, query strings, headers or tokens, in logs or error bodies', async () => {
    const state = demoState()
    current = await buildTestApp({
      registerRoutes: async (app) => {
        await demoRoutes(state)(app)
        app.post('/demo/log-mistake', async (request) => {
          // A handler that carelessly logs PHI-bearing objects: redaction is the second line of defence.
          request.log.info(
            { patient: { name: CANARY }, referral: { reason: CANARY, patient: CANARY } },
            'oops',
          )
          return { ok: true }
        })
      },
    })
    const { app } = current
    const token = await current.token({ userId: 'u-1' })
    const auth = { authorization: `Bearer ${token}` }
    const responses = [
      await app.inject({
        method: 'POST',
        url: '/demo/items',
        headers: { ...auth, 'x-patient-name': CANARY, cookie: `session=${CANARY}` },
        payload: { name: CANARY, quantity: 1, kind: 'box', dueAt: null, patient: { name: CANARY } },
      }),
      await app.inject({
        method: 'POST',
        url: '/demo/items',
        headers: auth,
        payload: { name: 1, quantity: CANARY, kind: CANARY, dueAt: CANARY, patient: { name: 5 } },
      }),
      await app.inject({ method: 'GET', url: `/demo/items?kind=${CANARY}`, headers: auth }),
      await app.inject({ method: 'GET', url: `/demo/items/${CANARY}`, headers: auth }),
      await app.inject({ method: 'GET', url: `/nowhere/${CANARY}?q=${CANARY}`, headers: auth }),
      await app.inject({ method: 'POST', url: '/demo/fail', headers: auth, payload: { note: CANARY } }),
      await app.inject({
        method: 'POST',
        url: '/demo/items',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: `{"name": "${CANARY}", broken`,
      }),
      await app.inject({ method: 'GET', url: '/demo/items', headers: { authorization: `Bearer ${CANARY}` } }),
      await app.inject({ method: 'POST', url: '/demo/log-mistake', headers: auth, payload: {} }),
    ]
    expect(responses.map((r) => r.statusCode)).toEqual([201, 400, 400, 404, 404, 500, 400, 401, 200])
    for (const res of responses.slice(1, 8)) expect(res.body).not.toContain(CANARY)

    const logs = current.logs()
    expect(logs).not.toContain(CANARY)
    expect(logs).not.toContain(token)
    // The request lines are there, with route patterns rather than raw URLs.
    const lines = logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const completed = lines.filter((l) => l.msg === 'request completed')
    expect(completed).toHaveLength(responses.length)
    expect(completed[0]).toMatchObject({ method: 'POST', route: '/demo/items', status: 201, userId: 'u-1' })
    expect(typeof completed[0]?.durationMs).toBe('number')
    expect(completed[0]?.correlationId).toBe(responses[0]?.headers['x-correlation-id'])
    expect(completed[3]).toMatchObject({ method: 'GET', route: '/demo/items/:id', status: 404 })
    expect(completed[4]).toMatchObject({ route: '(unmatched)', status: 404 })
    const mistake = lines.find((l) => l.msg === 'oops')
    expect(mistake?.patient).toBe('[redacted]')
    expect(mistake?.referral).toEqual({ reason: '[redacted]', patient: '[redacted]' })
  })

  it('redacts authorization and cookie headers in logged request objects', async () => {
    const chunks: string[] = []
    const logger = createLogger({
      level: 'info',
      stream: new Writable({
        write(chunk, _e, cb) {
          chunks.push(String(chunk))
          cb()
        },
      }),
    })
    logger.info({
      headers: { authorization: 'Bearer secret-token', cookie: 'sid=secret-cookie', accept: 'json' },
    })
    logger.info({ body: { anything: 'secret-body' }, query: { q: 'secret-query' } })
    const out = chunks.join('')
    for (const secret of ['secret-token', 'secret-cookie', 'secret-body', 'secret-query'])
      expect(out).not.toContain(secret)
    expect(out).toContain('"accept":"json"')
  })
})
