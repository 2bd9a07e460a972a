import { expected, type StoredEvent, type StreamId, unsafeId } from '@referrals/core'
import fc from 'fast-check'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPostgresEventStore, type PostgresEventStore } from './event-store.js'
import { newEvent, ok, uniqueCategory } from './testing/fixtures.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

/**
 * `readAll` with category prefixes (`practice-`, `referral-`) reads the `events_category_position`
 * index (migration 5) instead of walking every later event: a directory catch-up must not cost
 * more as referrals accumulate behind the last practice change.
 */
let db: TestDatabase
let store: PostgresEventStore
beforeAll(async () => {
  db = await createTestDatabase()
  store = await createPostgresEventStore({ connectionString: db.url })
})
afterAll(async () => {
  await store?.close()
  await db?.drop()
})

const append = (streamId: string, n = 1) =>
  ok(
    store.append({
      streamId: unsafeId<StreamId>(streamId),
      expected: expected.any,
      events: Array.from({ length: n }, () => newEvent()),
    }),
  )

it('reads the same events as filtering the whole log by prefix, for any prefixes, position and page size', async () => {
  const run = uniqueCategory()
  // Categories that share beginnings, and an id with a second '-'.
  const ids = [`${run}a-1`, `${run}a-2-x`, `${run}ab-1`, `${run}b-7`, `${run}c-1`, `${run}ab-2`]
  for (let i = 0; i < 60; i++) await append(ids[(i * 7) % ids.length] as string, 1 + (i % 3))
  const everything = (await ok(store.readAll())).filter((e) => e.streamId.startsWith(run))
  const first = everything[0]?.globalPosition ?? 0n
  await fc.assert(
    fc.asyncProperty(
      fc.subarray([`${run}a-`, `${run}ab-`, `${run}b-`, `${run}c-`, `${run}zz-`], { minLength: 1 }),
      fc.nat({ max: everything.length }),
      fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
      async (prefixes, skip, maxCount) => {
        const after = skip === 0 ? first - 1n : (everything[skip - 1] as StoredEvent).globalPosition
        const want = everything
          .filter((e) => e.globalPosition > after && prefixes.some((p) => e.streamId.startsWith(p)))
          .slice(0, maxCount ?? Number.MAX_SAFE_INTEGER)
        const got = await ok(
          store.readAll({ after, streamPrefixes: prefixes, ...(maxCount === undefined ? {} : { maxCount }) }),
        )
        expect(got.map((e) => e.id)).toEqual(want.map((e) => e.id))
      },
    ),
    { numRuns: 60 },
  )
})

it('a catch-up after the last practice event reads no referral event (plan checked with EXPLAIN ANALYZE)', async () => {
  const run = uniqueCategory()
  await append(`${run}practice-1`, 2)
  for (let i = 0; i < 300; i++) await append(`${run}referral-${i}`, 10)
  const practice = await ok(store.readAll({ streamPrefixes: [`${run}practice-`] }))
  expect(practice).toHaveLength(2)
  const after = (practice[1] as StoredEvent).globalPosition

  // The statement readAll sends, captured on pg's client, then explained with the same values.
  const captured: { text: string; values: unknown[] }[] = []
  const query = pg.Client.prototype.query
  pg.Client.prototype.query = function (this: unknown, ...a: unknown[]) {
    if (typeof a[0] === 'string' && a[0].includes('pg_snapshot_xmin'))
      captured.push({ text: a[0], values: a[1] as unknown[] })
    return (query as (...b: unknown[]) => unknown).apply(this, a)
  } as typeof query
  try {
    expect(await ok(store.readAll({ after, streamPrefixes: [`${run}practice-`] }))).toEqual([])
  } finally {
    pg.Client.prototype.query = query
  }
  expect(captured).toHaveLength(1)
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  try {
    const { text, values } = captured[0] as { text: string; values: unknown[] }
    const explained = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values)
    type PlanNode = {
      'Node Type': string
      'Relation Name'?: string
      'Actual Rows': number
      'Actual Loops': number
      'Rows Removed by Filter'?: number
      'Rows Removed by Index Recheck'?: number
      Plans?: PlanNode[]
    }
    const nodes: PlanNode[] = []
    const walk = (n: PlanNode) => {
      nodes.push(n)
      for (const c of n.Plans ?? []) walk(c)
    }
    walk((explained.rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0]?.Plan as PlanNode)
    const scans = nodes.filter((n) => n['Relation Name'] === 'events')
    expect(scans.length).toBeGreaterThan(0)
    // 3,000 referral events follow the practice events: none of them may be read and filtered out.
    const touched = scans.reduce(
      (sum, n) =>
        sum +
        n['Actual Rows'] * n['Actual Loops'] +
        (n['Rows Removed by Filter'] ?? 0) +
        (n['Rows Removed by Index Recheck'] ?? 0),
      0,
    )
    expect(touched, JSON.stringify(scans)).toBeLessThan(10)
  } finally {
    await client.end()
  }
})
