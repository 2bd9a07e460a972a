import { type ReferralFacts, referralAggregate } from '@referrals/core'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresEventStore, type PostgresEventStore } from './event-store.js'
import { migrate } from './migrations.js'
import { createPostgresReferralFacts } from './referral-facts.js'
import { factArbitraries, factCase, factsInsert, writeFactsRows } from './referral-facts.test-support.js'
import { sqlFactReport } from './referral-facts-report.js'
import { applyRollupDelta, rollupFillSql } from './referral-facts-rollup.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

// The monthly rollup (referral-facts-rollup.ts) read by the funnel and attribution for the whole
// months of a period: random facts rows over four months, the rollup filled from them, and every
// report, grouping, filter, period (often on a month boundary), practice scope, viewer and
// threshold must give the core's `factReport` cells. And the projection's batch deltas must keep
// the rollup equal to a fill from the final rows.

let db: TestDatabase
let store: PostgresEventStore

beforeAll(async () => {
  db = await createTestDatabase()
  store = await createPostgresEventStore({ connectionString: db.url })
  await createPostgresReferralFacts({ store, aggregate: referralAggregate() })
})
afterAll(async () => {
  await store?.close()
  await db?.drop()
})

// Four months, with instants pinned on month boundaries (whole months read from the rollup).
const { factsRow, rowsArb, requestArb } = factArbitraries('2026-01-20T00:00:00.000Z', 100, [
  '2026-02-01T00:00:00.000Z',
  '2026-03-01T00:00:00.000Z',
  '2026-04-01T00:00:00.000Z',
  '2026-02-28T23:59:59.999Z',
])

const writeRows = (rows: readonly ReferralFacts[]) =>
  writeFactsRows(store.pool, `"${store.schema}".referral_facts`, rows)

const tables = () => ({
  table: `"${store.schema}".referral_facts`,
  rollup: `"${store.schema}".referral_facts_monthly`,
})
const refill = async () => {
  const { table, rollup } = tables()
  await store.pool.query(`TRUNCATE ${rollup}`)
  await store.pool.query(rollupFillSql(table, rollup))
}
const rollupRows = async () =>
  (
    await store.pool.query<Record<string, unknown>>(
      `SELECT * FROM ${tables().rollup} WHERE n <> 0 ORDER BY ${Array.from({ length: 28 }, (_, i) => i + 1).join(', ')}`,
    )
  ).rows

describe('fact reports over the monthly rollup', () => {
  it('equal the core computation over the same rows, for any report, grouping, filter and viewer', async () => {
    await fc.assert(
      fc.asyncProperty(
        rowsArb,
        fc.array(requestArb, { minLength: 1, maxLength: 6 }),
        async (rows, requests) => {
          await writeRows(rows)
          await refill()
          for (const r of requests) {
            const { query: q, options, reference } = factCase(rows, r, r.now)
            const { table, rollup } = tables()
            expect(await sqlFactReport(store.pool, table, q, options, rollup)).toEqual(reference)
          }
        },
      ),
      { numRuns: 150 },
    )
  }, 120_000)

  it('is kept by batch deltas equal to a fill from the final rows', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(rowsArb, { minLength: 1, maxLength: 4 }), async (versions) => {
        // Each batch writes new versions of some referrals (ids r-000…): before = the last version.
        const { rollup } = tables()
        await store.pool.query(`TRUNCATE ${rollup}`)
        const current = new Map<string, ReferralFacts>()
        const client = await store.pool.connect()
        try {
          for (const batch of versions) {
            const changes = batch.map((after) => ({ before: current.get(after.referralId) ?? null, after }))
            await applyRollupDelta(client, rollup, changes)
            for (const after of batch) current.set(after.referralId, after)
          }
        } finally {
          client.release()
        }
        const kept = await rollupRows()
        const zero = await store.pool.query(
          `SELECT * FROM ${rollup} WHERE n = 0 AND (delivered, accepted, scheduled, completed, deliveries, declines, expiries, no_shows, cancelled_before_accept, cancelled_after_accept, cancelled_after_schedule, returned, unassigned) <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)`,
        )
        expect(zero.rows).toEqual([])
        await writeRows([...current.values()])
        await refill()
        expect(kept).toEqual(await rollupRows())
      }),
      { numRuns: 60 },
    )
  }, 120_000)

  it('migration 6 fills the rollup from the facts rows already there', async () => {
    const schema = 'rollup_upgrade'
    await migrate(store.pool, { schema, upTo: 5 })
    const rows =
      fc.sample(fc.tuple(...Array.from({ length: 30 }, (_, i) => factsRow(i))), { numRuns: 1, seed: 7 })[0] ??
      []
    await store.pool.query(...factsInsert(`"${schema}".referral_facts`, rows))
    expect((await migrate(store.pool, { schema })).applied).toContain(6)
    const all = `SELECT * FROM "${schema}".referral_facts_monthly ORDER BY ${Array.from({ length: 28 }, (_, i) => i + 1).join(', ')}`
    const filled = (await store.pool.query(all)).rows
    expect(filled.length).toBeGreaterThan(0)
    // The same as the projection's deltas would have written, every row new.
    await store.pool.query(`TRUNCATE "${schema}".referral_facts_monthly`)
    const client = await store.pool.connect()
    try {
      await applyRollupDelta(
        client,
        `"${schema}".referral_facts_monthly`,
        rows.map((after) => ({ before: null, after })),
      )
    } finally {
      client.release()
    }
    expect((await store.pool.query(all)).rows).toEqual(filled)
  })
})
