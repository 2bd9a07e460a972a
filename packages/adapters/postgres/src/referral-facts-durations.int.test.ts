import {
  createReferralFactsIndex,
  factReport,
  type Instant,
  type PracticeId,
  REFERRAL_FACT_FIELDS,
  REPORT_DIMENSIONS,
  type ReferralFacts,
  type ReferralId,
  referralAggregate,
} from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import fc from 'fast-check'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresEventStore, type PostgresEventStore } from './event-store.js'
import { migrate } from './migrations.js'
import { createPostgresReferralFacts, type PostgresReferralFacts } from './referral-facts.js'
import { FACT_PRACTICES, factArbitraries, factCase, factsInsert } from './referral-facts.test-support.js'
import { factColumn } from './referral-facts-columns.js'
import { durationsFillSql, refreshDurations } from './referral-facts-durations.js'
import { sqlFactReport } from './referral-facts-report.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

// The narrow durations table (referral-facts-durations.ts) read by timings and wait-times when they
// group and filter by the pool or the practices only: random facts rows, the table filled from
// them, and both reports for any such grouping, filter, period, practice scope, viewer and
// threshold must give the core's `factReport` cells (and read the durations table). The batch
// refresh must keep it equal to a fill from the final rows; so must the projection and its rebuild.

let db: TestDatabase
let store: PostgresEventStore
let facts: PostgresReferralFacts

beforeAll(async () => {
  db = await createTestDatabase()
  store = await createPostgresEventStore({ connectionString: db.url })
  facts = await createPostgresReferralFacts({ store, aggregate: referralAggregate() })
})
afterAll(async () => {
  await store?.close()
  await db?.drop()
})

// Rows over 100 days from 2026-01-20 (the shared arbitraries of the fact-report tests).
const { factsRow, rowsArb, someInstant } = factArbitraries('2026-01-20T00:00:00.000Z', 100, [
  '2026-02-01T00:00:00.000Z',
  '2026-03-01T00:00:00.000Z',
])
const practices = FACT_PRACTICES

const NARROW = ['pool', 'senderPractice', 'receivingPractice'] as const
const requestArb = fc.record({
  report: fc.constantFrom('timings', 'wait-times') as fc.Arbitrary<'timings' | 'wait-times'>,
  groupBy: fc.shuffledSubarray([...NARROW], { maxLength: 2 }),
  from: fc.option(someInstant, { nil: undefined }),
  to: fc.option(someInstant, { nil: undefined }),
  practiceId: fc.option(fc.constantFrom(...practices), { nil: undefined }),
  viewer: fc.subarray([...practices]),
  threshold: fc.integer({ min: 1, max: 6 }),
  // A filter (mostly on a dimension the table holds) with the value of one of the rows or none's.
  filter: fc.option(
    fc.tuple(fc.constantFrom(...NARROW, ...NARROW, ...REPORT_DIMENSIONS), fc.nat(), fc.boolean()),
    { nil: undefined },
  ),
})

const tables = () => ({
  table: `"${store.schema}".referral_facts`,
  durations: `"${store.schema}".referral_facts_durations`,
})

/** Upserts facts rows as the projection does (a later version replaces the row). */
const upsertRows = async (db: pg.Pool | pg.PoolClient, table: string, rows: readonly ReferralFacts[]) => {
  if (rows.length === 0) return
  const [insert, values] = factsInsert(table, rows)
  await db.query(
    `${insert} ON CONFLICT (referral_id) DO UPDATE SET ${REFERRAL_FACT_FIELDS.slice(1)
      .map((k) => `${factColumn(k)} = EXCLUDED.${factColumn(k)}`)
      .join(', ')}`,
    values,
  )
}
const durationRows = async (durations: string) =>
  (await store.pool.query<Record<string, unknown>>(`SELECT * FROM ${durations} ORDER BY referral_id`)).rows
/** What a fill from the facts rows gives (into a scratch copy of the table). */
const filled = async (table: string, durations: string) => {
  const client = await store.pool.connect()
  try {
    await client.query('BEGIN')
    await client.query(`TRUNCATE ${durations}`)
    await client.query(durationsFillSql(table, durations))
    return (await client.query<Record<string, unknown>>(`SELECT * FROM ${durations} ORDER BY referral_id`))
      .rows
  } finally {
    await client.query('ROLLBACK')
    client.release()
  }
}

describe('fact reports over the durations table', () => {
  it('timings and wait-times equal the core computation, and read the durations table', async () => {
    const { table, durations } = tables()
    await fc.assert(
      fc.asyncProperty(
        rowsArb,
        fc.array(requestArb, { minLength: 1, maxLength: 6 }),
        async (rows, requests) => {
          await store.pool.query(`TRUNCATE ${table}, ${durations}`)
          await upsertRows(store.pool, table, rows)
          await store.pool.query(durationsFillSql(table, durations))
          for (const r of requests) {
            const { query: q, options, reference } = factCase(rows, r, '2026-06-01T00:00:00.000Z' as Instant)
            const texts: string[] = []
            const spy = {
              query: (text: string, values: unknown[]) => {
                texts.push(text)
                return store.pool.query(text, values)
              },
            }
            expect(
              await sqlFactReport(spy as unknown as pg.Pool, table, q, options, undefined, durations),
            ).toEqual(reference)
            const d = r.filter?.[0]
            const narrow = d === undefined || (NARROW as readonly string[]).includes(d)
            expect(texts.every((t) => t.includes('referral_facts_durations'))).toBe(narrow)
          }
        },
      ),
      { numRuns: 150 },
    )
  }, 120_000)

  it('is kept by the batch refresh equal to a fill from the final rows', async () => {
    const { table, durations } = tables()
    await fc.assert(
      fc.asyncProperty(fc.array(rowsArb, { minLength: 1, maxLength: 4 }), async (versions) => {
        // Each batch writes new versions of some referrals (ids r-000…) and refreshes their rows.
        await store.pool.query(`TRUNCATE ${table}, ${durations}`)
        const client = await store.pool.connect()
        try {
          for (const batch of versions) {
            await client.query('BEGIN')
            await upsertRows(client, table, batch)
            await refreshDurations(
              client,
              table,
              durations,
              batch.map((f) => f.referralId),
            )
            await client.query('COMMIT')
          }
        } finally {
          client.release()
        }
        const kept = await durationRows(durations)
        expect(kept.length).toBe(
          Number((await store.pool.query(`SELECT count(*) FROM ${table}`)).rows[0].count),
        )
        expect(kept).toEqual(await filled(table, durations))
      }),
      { numRuns: 60 },
    )
  }, 120_000)

  it('is kept by the projection and its rebuild equal to a fill from the facts rows', async () => {
    const { table, durations } = tables()
    await store.pool.query(`TRUNCATE ${table}, ${durations}`)
    const world = await createWorld({ store, referralFacts: () => facts })
    await world.addSpecialist('spec-a', 1)
    await world.addSpecialist('spec-b', 1)
    for (const n of [1, 2, 3]) {
      world.clock.advance(60_000)
      await world.send(`r-${n}`)
    }
    await facts.refresh() // the rows exist before the accept and schedule change r-1's
    const holder = (await world.holderOf('r-1')) as PracticeId
    const owner = await world.as(world.ownerOf(holder))
    world.clock.advance(3_600_000)
    const r1 = 'r-1' as ReferralId
    await world.must(world.engine.referrals.execute(r1, { type: 'AcceptReferral', data: {} }, owner))
    world.clock.advance(3_600_000)
    await world.must(
      world.engine.referrals.execute(
        r1,
        { type: 'ScheduleAppointment', data: { at: '2026-03-20T10:00:00.000Z' as never } },
        owner,
      ),
    )
    await facts.refresh()
    const live = await durationRows(durations)
    expect(live.map((r) => r.referral_id)).toEqual((await facts.facts({})).map((f) => f.referralId).sort())
    expect(live.find((r) => r.referral_id === 'r-1')?.wait_ms).not.toBeNull()
    expect(live).toEqual(await filled(table, durations))
    await store.pool.query(`UPDATE ${durations} SET wait_ms = -1`)
    await facts.rebuild()
    expect(await durationRows(durations)).toEqual(live)
    // And the reports read from it give the in-memory model's cells.
    const inMemory = createReferralFactsIndex({ store, aggregate: referralAggregate() })
    for (const report of ['timings', 'wait-times'] as const) {
      for (const groupBy of [[], ['pool'], ['receivingPractice']] as const) {
        const options = { report, groupBy, now: world.clock.now(), viewer: { practiceIds: [] }, threshold: 1 }
        expect(await facts.report({}, options)).toEqual(factReport(await inMemory.facts({}), options))
      }
    }
  })

  it('migration 8 fills the table from the facts rows already there', async () => {
    const schema = 'durations_upgrade'
    await migrate(store.pool, { schema, upTo: 7 })
    const rows =
      fc.sample(fc.tuple(...Array.from({ length: 30 }, (_, i) => factsRow(i))), { numRuns: 1, seed: 7 })[0] ??
      []
    const table = `"${schema}".referral_facts`
    const durations = `"${schema}".referral_facts_durations`
    await upsertRows(store.pool, table, rows)
    expect((await migrate(store.pool, { schema })).applied).toContain(8)
    const all = await durationRows(durations)
    expect(all.length).toBe(30)
    // The same as the projection's refresh would have written, every row new.
    await store.pool.query(`TRUNCATE ${durations}`)
    const client = await store.pool.connect()
    try {
      await refreshDurations(
        client,
        table,
        durations,
        rows.map((f) => f.referralId),
      )
    } finally {
      client.release()
    }
    expect(await durationRows(durations)).toEqual(all)
  })
})
