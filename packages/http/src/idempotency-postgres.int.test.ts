import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { IdempotencyStore } from './idempotency.js'
import {
  postgresIdempotencyStore,
  purgeExpiredIdempotencyKeys,
  startIdempotencyPurge,
} from './idempotency-postgres.js'
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

  it('lets a retry take over an unanswered claim once its lease ran out (the process died), not before', async () => {
    // The default lease is 60 s: within it the key is busy, after it a new claim starts.
    expect(await store.begin('user:l', 'k', 'f1', now, 86_400_000)).toEqual({ kind: 'started' })
    expect(await store.begin('user:l', 'k', 'f1', later(59_999), 86_400_000)).toEqual({ kind: 'in_flight' })
    expect(await store.begin('user:l', 'k', 'f1', later(60_000), 86_400_000)).toEqual({ kind: 'started' })
    // A completed record is not subject to the lease: it lasts its whole lifetime.
    await store.complete('user:l', 'k', response, later(60_000))
    expect(await store.begin('user:l', 'k', 'f1', later(3_600_000), 86_400_000)).toEqual({
      kind: 'replay',
      response,
    })
    expect(await store.begin('user:l', 'k', 'f2', later(3_600_000), 86_400_000)).toEqual({ kind: 'mismatch' })

    const short = await postgresIdempotencyStore({ pool, inFlightLeaseMs: 5_000 })
    expect(await short.begin('user:l', 'k2', 'f1', now, 86_400_000)).toEqual({ kind: 'started' })
    expect(await short.begin('user:l', 'k2', 'f1', later(4_999), 86_400_000)).toEqual({ kind: 'in_flight' })
    expect(await short.begin('user:l', 'k2', 'f2', later(5_000), 86_400_000)).toEqual({ kind: 'started' })
    await expect(postgresIdempotencyStore({ pool, inFlightLeaseMs: 0 })).rejects.toThrow(TypeError)
  })

  it('ignores completion and release by a claim that was taken over', async () => {
    expect(await store.begin('user:t', 'k', 'f1', now, 86_400_000)).toEqual({ kind: 'started' })
    expect(await store.begin('user:t', 'k', 'f1', later(60_000), 86_400_000)).toEqual({ kind: 'started' })
    // The first, slow request ends: it neither stores its response nor frees the new claim.
    await store.complete('user:t', 'k', { ...response, body: '{"id":"stale"}' }, now)
    await store.release('user:t', 'k', now)
    expect(await store.begin('user:t', 'k', 'f1', later(60_001), 86_400_000)).toEqual({ kind: 'in_flight' })
    await store.complete('user:t', 'k', response, later(60_000))
    expect(await store.begin('user:t', 'k', 'f1', later(60_002), 86_400_000)).toEqual({
      kind: 'replay',
      response,
    })
  })

  it('adds the lease column to a table created by an earlier version, keeping its records', async () => {
    await pool.query('CREATE SCHEMA old_http')
    await pool.query(`CREATE TABLE old_http.idempotency_keys (
      scope text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, status integer, headers jsonb,
      body text, created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL, PRIMARY KEY (scope, key))`)
    await pool.query(
      `INSERT INTO old_http.idempotency_keys (scope, key, fingerprint, created_at, expires_at)
       VALUES ('user:o', 'k', 'f', $1, $2)`,
      [now, later(86_400_000)],
    )
    const upgraded = await postgresIdempotencyStore({ pool, schema: 'old_http' })
    // An old claim has no lease: it stays busy until it expires, as it did before.
    expect(await upgraded.begin('user:o', 'k', 'f', later(3_600_000), 86_400_000)).toEqual({
      kind: 'in_flight',
    })
    expect(await upgraded.begin('user:o', 'k2', 'f', now, 86_400_000)).toEqual({ kind: 'started' })
    expect(await upgraded.begin('user:o', 'k2', 'f', later(60_000), 86_400_000)).toEqual({ kind: 'started' })
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

  it('purges in-flight claims whose lease ran out, keeping live claims and completed records', async () => {
    await store.begin('user:s', 'stuck', 'f', now, 86_400_000)
    await store.begin('user:s', 'done', 'f', now, 86_400_000)
    await store.complete('user:s', 'done', response, now)
    await store.begin('user:s', 'live', 'f', later(30_000), 86_400_000)
    expect(await purgeExpiredIdempotencyKeys(pool, later(60_000))).toBeGreaterThanOrEqual(1)
    const left = await pool.query(
      "SELECT key FROM referrals_http.idempotency_keys WHERE scope = 'user:s' ORDER BY key",
    )
    expect(left.rows).toEqual([{ key: 'done' }, { key: 'live' }])
  })

  it('startIdempotencyPurge purges periodically until stopped', async () => {
    await store.begin('user:p', 'old', 'f', now, 1000)
    await store.begin('user:p', 'new', 'f', now, 86_400_000)
    await store.complete('user:p', 'new', response, now)
    const count = async () =>
      (
        await pool.query(
          "SELECT count(*)::int AS n FROM referrals_http.idempotency_keys WHERE scope = 'user:p'",
        )
      ).rows[0].n
    const errors: unknown[] = []
    const purge = startIdempotencyPurge(pool, {
      intervalMs: 20,
      now: () => later(10_000),
      onError: (e) => errors.push(e),
    })
    await vi.waitFor(async () => expect(await count()).toBe(1), { timeout: 5000, interval: 20 })
    await purge.stop()
    await store.begin('user:p', 'old2', 'f', now, 1000)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await count()).toBe(2)
    expect(errors).toEqual([])
    expect(() => startIdempotencyPurge(pool, { intervalMs: 0 })).toThrow(TypeError)
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
