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

  /** The transaction that last wrote the key's idempotency record, and the one of the referral's events. */
  const writers = async (key: string, referralId: string) => {
    const pool = runtime.pool
    if (pool === undefined) throw new Error('no pool')
    const record = await pool.query<{ xmin: string; status: number | null }>(
      `SELECT xmin::text, status FROM referrals_http.idempotency_keys WHERE key = $1`,
      [key],
    )
    const events = await pool.query<{ xid: string }>(
      `SELECT DISTINCT transaction_id::xid::text AS xid FROM referrals.events WHERE stream_id = $1`,
      [`referral-${referralId}`],
    )
    return { record: record.rows, events: events.rows.map((r) => r.xid) }
  }

  it('stores the idempotency answer in the transaction of the referral and pool events, and replays it', async () => {
    const key = randomUUID()
    const referralId = randomUUID()
    const headers = { authorization: `Bearer ${token}`, 'idempotency-key': key }
    const first = await app.inject({
      method: 'POST',
      url: '/referrals',
      headers,
      payload: demoReferralBody(referralId),
    })
    expect(first.statusCode).toBe(201)
    expect(first.json().status).toBe('pending')
    const { record, events } = await writers(key, referralId)
    // One transaction wrote the send, its routing events and the answer: a crash cannot separate them.
    expect(events).toHaveLength(1)
    expect(record).toEqual([{ xmin: events[0], status: 201 }])
    // A retry with the same key gets the same answer, from the record, without a second referral.
    counting.reset()
    const again = await app.inject({
      method: 'POST',
      url: '/referrals',
      headers,
      payload: demoReferralBody(referralId),
    })
    expect(again.statusCode).toBe(201)
    expect(again.headers['idempotent-replayed']).toBe('true')
    expect(again.body).toBe(first.body)
    for (const name of ['content-type', 'location', 'etag'])
      expect([name, again.headers[name]]).toEqual([name, first.headers[name]])
    expect(counting.calls.append + counting.calls.appendMany).toBe(0)
    // The answer built for the transaction has the shape and headers of the one the handler sends
    // without a key (Fastify's serializer): same fields with the same types, same content type.
    const plain = await app.inject({
      method: 'POST',
      url: '/referrals',
      headers: { authorization: `Bearer ${token}` },
      payload: demoReferralBody(randomUUID()),
    })
    expect(plain.statusCode).toBe(201)
    expect(plain.headers['idempotent-replayed']).toBeUndefined()
    const shape = (body: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(body).map(([k, v]) => [k, v === null ? 'null' : typeof v]))
    expect(shape(first.json())).toEqual(shape(plain.json()))
    expect(first.headers['content-type']).toBe(plain.headers['content-type'])
    expect(first.headers.etag).toBe(plain.headers.etag)
    expect(first.headers.location).toBe(`/referrals/${referralId}`)
  })

  it('an action with a key (accept) stores its answer in the transaction of its event', async () => {
    const referralId = randomUUID()
    const sent = await send(referralId)
    expect(sent.statusCode).toBe(201)
    const recipient = sent.json().recipientPracticeId as string
    const owner = DEMO.specialists.find((p) => p.practiceId === recipient)?.owner
    if (owner === undefined) throw new Error(`no demo owner for ${recipient}`)
    const ownerToken = await issueDevToken(runtime.config, { userId: owner }, { ttlSeconds: 600 })
    const key = randomUUID()
    const accepted = await app.inject({
      method: 'POST',
      url: `/referrals/${referralId}/accept`,
      headers: { authorization: `Bearer ${ownerToken}`, 'idempotency-key': key },
      payload: {},
    })
    expect(accepted.statusCode).toBe(200)
    expect(accepted.json().status).toBe('accepted')
    const { record, events } = await writers(key, referralId)
    expect(events).toHaveLength(2)
    expect(record).toEqual([{ xmin: events[1], status: 200 }])
  })
})
