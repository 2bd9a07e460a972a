import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { BeginResult, IdempotencyStore } from './idempotency.js'
import { postgresIdempotencyStore } from './idempotency-postgres.js'

/**
 * Group commit of the PostgreSQL idempotency store: concurrent claims and completions share
 * statements, and every caller still gets exactly the answer it would get alone, in order.
 */
const now = new Date('2026-03-01T00:00:00.000Z')
const later = (ms: number) => new Date(now.getTime() + ms)
const responseOf = (key: string) => ({
  status: 201,
  headers: { location: `/x/${key}` },
  body: JSON.stringify({ id: key }),
})
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

describe('postgresIdempotencyStore group commit', () => {
  let db: TestDatabase
  let pool: pg.Pool
  let store: IdempotencyStore & { close: () => Promise<void> }
  beforeAll(async () => {
    db = await createTestDatabase()
    pool = new pg.Pool({ connectionString: db.url, max: 4 })
    store = await postgresIdempotencyStore({ pool })
  })
  afterAll(async () => {
    await store.close()
    await pool.end()
    await db.drop()
  })

  /** The statements `run` sends to `pool` (the store's only way to the database). */
  const statementsOf = async <A>(
    run: () => Promise<A>,
  ): Promise<{ result: A; inserts: number; updates: number }> => {
    const spy = vi.spyOn(pool, 'query')
    try {
      const result = await run()
      const texts = spy.mock.calls.map((c) => String(c[0]).trimStart())
      return {
        result,
        inserts: texts.filter((t) => t.startsWith('INSERT')).length,
        updates: texts.filter((t) => t.startsWith('UPDATE')).length,
      }
    } finally {
      spy.mockRestore()
    }
  }

  it('claims 100 concurrent keys in a few statements, each started, and completes them in a few more', async () => {
    const keys = range(100).map((i) => `gc-${i}`)
    const claimed = await statementsOf(() =>
      Promise.all(keys.map((k) => store.begin('user:g', k, `f-${k}`, now, 60_000))),
    )
    expect(claimed.result).toEqual(keys.map(() => ({ kind: 'started' })))
    // The first alone, then everything that queued behind it (256 at most per statement).
    expect(claimed.inserts).toBeLessThanOrEqual(3)
    const completed = await statementsOf(() =>
      Promise.all(keys.map((k) => store.complete('user:g', k, responseOf(k), now))),
    )
    expect(completed.updates).toBeLessThanOrEqual(3)
    // Each key replays its own response, not a neighbour’s from the same statement.
    const replays = await Promise.all(keys.map((k) => store.begin('user:g', k, `f-${k}`, later(1), 60_000)))
    expect(replays).toEqual(keys.map((k) => ({ kind: 'replay', response: responseOf(k) })))
    const rows = await pool.query(
      "SELECT count(*)::int AS n FROM referrals_http.idempotency_keys WHERE scope = 'user:g'",
    )
    expect(rows.rows[0]?.n).toBe(100)
  })

  it('answers a mixed batch exactly as one-at-a-time claims would, duplicates included', async () => {
    expect(await store.begin('user:m', 'done', 'f', now, 60_000)).toEqual({ kind: 'started' })
    await store.complete('user:m', 'done', responseOf('done'), now)
    expect(await store.begin('user:m', 'busy', 'f', now, 60_000)).toEqual({ kind: 'started' })
    // The claims share statements, a repeated key waiting for the next one: [first, done, busy,
    // new, other’s new, new2] (or [first] alone, then the rest), [done again, new again], [new a
    // third time]. Were repeated keys put in one statement, it would fail and each claim would be
    // written again on its own (10 statements).
    const { result: results, inserts } = await statementsOf(() =>
      Promise.all([
        store.begin('user:m', 'first', 'f', now, 60_000),
        store.begin('user:m', 'done', 'f', later(1), 60_000), // completed: replay
        store.begin('user:m', 'done', 'other', later(1), 60_000), // other body: mismatch
        store.begin('user:m', 'busy', 'f', later(1), 60_000), // in flight
        store.begin('user:m', 'new', 'f', later(1), 60_000), // started …
        store.begin('user:m', 'new', 'f', later(1), 60_000), // … so the same again is in flight
        store.begin('user:m', 'new', 'g', later(1), 60_000), // … and another body is refused
        store.begin('user:other', 'new', 'g', later(1), 60_000), // another user’s key of that name
        store.begin('user:m', 'new2', 'f', later(1), 60_000),
      ]),
    )
    expect(inserts).toBeLessThanOrEqual(4)
    const expected: BeginResult[] = [
      { kind: 'started' },
      { kind: 'replay', response: responseOf('done') },
      { kind: 'mismatch' },
      { kind: 'in_flight' },
      { kind: 'started' },
      { kind: 'in_flight' },
      { kind: 'mismatch' },
      { kind: 'started' },
      { kind: 'started' },
    ]
    expect(results).toEqual(expected)
  })

  it('takes over expired records and lapsed leases inside a batch, and leaves live ones alone', async () => {
    await store.begin('user:t', 'expired', 'f', now, 1000)
    await store.complete('user:t', 'expired', responseOf('expired'), now)
    await store.begin('user:t', 'lapsed', 'f', now, 60_000) // never answered: the lease (60 s) runs out
    await store.begin('user:t', 'live', 'f', later(30_000), 3_600_000) // its lease runs to 90 s
    const at = later(60_000)
    const results = await Promise.all([
      store.begin('user:t', 'hold', 'f', at, 3_600_000),
      store.begin('user:t', 'expired', 'g', at, 3_600_000),
      store.begin('user:t', 'lapsed', 'g', at, 3_600_000),
      store.begin('user:t', 'live', 'f', at, 3_600_000),
    ])
    expect(results.map((r) => r.kind)).toEqual(['started', 'started', 'started', 'in_flight'])
    // The completion of the claim that was taken over does not overwrite the new one.
    await Promise.all([
      store.complete('user:t', 'lapsed', responseOf('stale'), now),
      store.complete('user:t', 'expired', responseOf('fresh'), at),
    ])
    expect(await store.begin('user:t', 'lapsed', 'g', later(60_001), 3_600_000)).toEqual({
      kind: 'in_flight',
    })
    expect(await store.begin('user:t', 'expired', 'g', later(60_001), 3_600_000)).toEqual({
      kind: 'replay',
      response: responseOf('fresh'),
    })
  })

  it('lets two processes race on the same keys in opposite orders: each key started once, no deadlock', async () => {
    const otherPool = new pg.Pool({ connectionString: db.url, max: 4 })
    const other = await postgresIdempotencyStore({ pool: otherPool })
    try {
      for (let round = 0; round < 5; round++) {
        const keys = range(40).map((i) => `race-${round}-${i}`)
        const results = await Promise.all([
          ...keys.map((k) => store.begin('user:r', k, 'f', now, 60_000)),
          ...[...keys].reverse().map((k) => other.begin('user:r', k, 'f', now, 60_000)),
        ])
        const started = results.filter((r) => r.kind === 'started').length
        expect(started).toBe(keys.length)
        expect(results.filter((r) => r.kind === 'in_flight')).toHaveLength(keys.length)
      }
    } finally {
      await other.close()
      await otherPool.end()
    }
  })

  it('fails only the claim the database refuses, not the others written with it', async () => {
    const results = await Promise.allSettled([
      store.begin('user:b', 'hold', 'f', now, 60_000),
      store.begin('user:b', 'good-1', 'f', now, 60_000),
      // A NUL character cannot be stored in PostgreSQL text (the HTTP layer never sends one).
      store.begin('user:b', 'bad\u0000key', 'f', now, 60_000),
      store.begin('user:b', 'good-2', 'f', now, 60_000),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled'])
    expect(results[1]).toEqual({ status: 'fulfilled', value: { kind: 'started' } })
    expect(results[3]).toEqual({ status: 'fulfilled', value: { kind: 'started' } })
    const rows = await pool.query(
      "SELECT key FROM referrals_http.idempotency_keys WHERE scope = 'user:b' ORDER BY key",
    )
    expect(rows.rows.map((r) => r.key)).toEqual(['good-1', 'good-2', 'hold'])
  })

  it('with maxBatch 1 writes one statement per claim (group commit off)', async () => {
    const single = await postgresIdempotencyStore({ pool, maxBatch: 1 })
    const claimed = await statementsOf(() =>
      Promise.all(range(10).map((i) => single.begin('user:s', `one-${i}`, 'f', now, 60_000))),
    )
    expect(claimed.inserts).toBe(10)
    expect(claimed.result.every((r) => r.kind === 'started')).toBe(true)
    await expect(postgresIdempotencyStore({ pool, maxBatch: 0 })).rejects.toThrow(TypeError)
  })
})
