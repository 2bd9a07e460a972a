import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IdempotencyStore } from './idempotency.js'
import { postgresIdempotencyStore, purgeExpiredIdempotencyKeys } from './idempotency-postgres.js'
import { buildTestApp } from './testing.js'
import { demoRoutes, demoState } from './testing-demo.js'

const now = new Date('2026-03-01T00:00:00.000Z')
const later = (ms: number) => new Date(now.getTime() + ms)
const response = { status: 201, headers: { etag: 'W/"1"', location: '/x/1' }, body: '{"id":"x-1"}' }

describe('postgresIdempotencyStore', () => {
  let db: TestDatabase
  let pool: pg.Pool
  let store: IdempotencyStore & { close: () => Promise<void> }
  beforeAll(async () => {
    db = await createTestDatabase()
    pool = new pg.Pool({ connectionString: db.url })
    store = await postgresIdempotencyStore({ pool })
  })
  afterAll(async () => {
    await store.close()
    await pool.end()
    await db.drop()
  })

  it('creates its table in its own schema, idempotently', async () => {
    const again = await postgresIdempotencyStore({ connectionString: db.url })
    await again.close()
    const tables = await pool.query(
      "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name = 'idempotency_keys'",
    )
    expect(tables.rows).toEqual([{ table_schema: 'referrals_http', table_name: 'idempotency_keys' }])
  })

  it('claims, reports in flight and mismatch, replays, and scopes by user', async () => {
    expect(await store.begin('user:a', 'k1', 'f1', now, 60_000)).toEqual({ kind: 'started' })
    expect(await store.begin('user:a', 'k1', 'f1', now, 60_000)).toEqual({ kind: 'in_flight' })
    expect(await store.begin('user:a', 'k1', 'f2', now, 60_000)).toEqual({ kind: 'mismatch' })
    expect(await store.begin('user:b', 'k1', 'f2', now, 60_000)).toEqual({ kind: 'started' })
    await store.complete('user:a', 'k1', response)
    expect(await store.begin('user:a', 'k1', 'f1', later(1000), 60_000)).toEqual({ kind: 'replay', response })
    await store.release('user:a', 'k1')
    expect(await store.begin('user:a', 'k1', 'f1', later(2000), 60_000)).toEqual({ kind: 'replay', response })
  })

  it('releases in-flight claims and takes over expired records', async () => {
    expect(await store.begin('user:c', 'k', 'f1', now, 60_000)).toEqual({ kind: 'started' })
    await store.release('user:c', 'k')
    expect(await store.begin('user:c', 'k', 'f2', now, 60_000)).toEqual({ kind: 'started' })
    await store.complete('user:c', 'k', response)
    expect(await store.begin('user:c', 'k', 'f3', later(59_999), 60_000)).toEqual({ kind: 'mismatch' })
    expect(await store.begin('user:c', 'k', 'f3', later(60_000), 60_000)).toEqual({ kind: 'started' })
    expect(await store.begin('user:c', 'k', 'f3', later(60_001), 60_000)).toEqual({ kind: 'in_flight' })
  })

  it('lets exactly one of many concurrent claims start', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => store.begin('user:d', 'race', 'f', now, 60_000)),
    )
    expect(results.filter((r) => r.kind === 'started')).toHaveLength(1)
    expect(results.filter((r) => r.kind === 'in_flight')).toHaveLength(19)
  })

  it('purges expired records', async () => {
    await store.begin('user:e', 'old', 'f', now, 1000)
    await store.begin('user:e', 'new', 'f', now, 1_000_000)
    expect(await purgeExpiredIdempotencyKeys(pool, later(5000))).toBeGreaterThanOrEqual(1)
    const left = await pool.query("SELECT key FROM referrals_http.idempotency_keys WHERE scope = 'user:e'")
    expect(left.rows).toEqual([{ key: 'new' }])
  })

  it('backs the HTTP protocol: replay across two app instances sharing the database', async () => {
    const state = demoState()
    const first = await buildTestApp({ registerRoutes: demoRoutes(state), idempotencyStore: store })
    const second = await buildTestApp({ registerRoutes: demoRoutes(state), idempotencyStore: store })
    try {
      const item = { name: 'n', quantity: 1, kind: 'bag', dueAt: null }
      const post = async (app: typeof first, payload: object) =>
        app.app.inject({
          method: 'POST',
          url: '/demo/items',
          headers: {
            authorization: `Bearer ${await app.token({ userId: 'u-9' })}`,
            'idempotency-key': 'shared',
          },
          payload,
        })
      const a = await post(first, item)
      const b = await post(second, item)
      expect(a.statusCode).toBe(201)
      expect(b.statusCode).toBe(201)
      expect(b.body).toBe(a.body)
      expect(b.headers['idempotent-replayed']).toBe('true')
      expect((await post(second, { ...item, quantity: 2 })).statusCode).toBe(422)
      expect(state.writes).toBe(1)
    } finally {
      await first.app.close()
      await second.app.close()
    }
  })
})
