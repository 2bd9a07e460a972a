import { randomUUID } from 'node:crypto'
import { countingStore } from '@referrals/core/testing'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from './app.js'
import { issueDevToken } from './auth.js'
import { loadConfig } from './config.js'
import { DEMO, demoReferralBody, seedDemo } from './demo.js'
import { registerResourceRoutes } from './routes/resources.js'
import { openRuntime, type Runtime } from './server.js'

/**
 * Issue 11 "Done when": a choose-for-me send through the production wiring (the HTTP service on
 * PostgreSQL, hash-chained store, encrypted PHI, routing) commits once and reads no stream twice.
 * The calls are counted at the store port under the hash chain, as `bench/http` counts them.
 */
describe('the write path of the HTTP service on PostgreSQL', () => {
  let db: TestDatabase
  let runtime: Runtime
  let counting: ReturnType<typeof countingStore>
  let app: Awaited<ReturnType<typeof buildApp>>
  let token: string

  beforeAll(async () => {
    db = await createTestDatabase()
    const config = await loadConfig({ DATABASE_URL: db.url, LOG_LEVEL: 'silent' }, () => undefined)
    runtime = await openRuntime(config, {
      wrapStore: (inner) => {
        counting = countingStore(inner)
        return counting.store
      },
    })
    await seedDemo(runtime.engine)
    app = await buildApp({
      store: runtime.store,
      config,
      resolveActor: (userId, roles) => runtime.engine.directory.resolveActor(userId, roles),
      idempotencyStore: runtime.idempotencyStore,
      registerRoutes: registerResourceRoutes({ engine: runtime.engine, routing: runtime.routing }),
    })
    token = await issueDevToken(config, { userId: DEMO.clinic.owner }, { ttlSeconds: 600 })
  }, 60_000)

  afterAll(async () => {
    await app?.close()
    await runtime?.close()
    await db?.drop()
  })

  const send = (referralId: string) =>
    app.inject({
      method: 'POST',
      url: '/referrals',
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': randomUUID() },
      payload: demoReferralBody(referralId),
    })

  it('a choose-for-me send is one transaction, reads each stream at most once and not its own new stream', async () => {
    // Warm up: the process has loaded the pool and caught up on the directory once.
    expect((await send(randomUUID())).statusCode).toBe(201)
    for (let i = 0; i < 3; i++) {
      counting.reset()
      const referralId = randomUUID()
      const sent = await send(referralId)
      expect(sent.statusCode).toBe(201)
      expect(sent.json().status).toBe('pending')
      expect(counting.calls.append + counting.calls.appendMany).toBe(1)
      for (const [streamId, reads] of counting.calls.reads) expect([streamId, reads]).toEqual([streamId, 1])
      // The new referral's stream is not read at all: the send is decided on the empty stream.
      expect(counting.calls.reads.get(`referral-${referralId}`)).toBeUndefined()
    }
  })
})
