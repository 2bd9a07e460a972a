import {
  createReferralFactsIndex,
  FACT_REPORTS,
  factReport,
  type PracticeId,
  type ReferralId,
  referralAggregate,
} from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresEventStore, type PostgresEventStore } from './event-store.js'
import {
  createPostgresReferralFacts,
  type PostgresReferralFacts,
  REFERRAL_FACTS_PROJECTION,
} from './referral-facts.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

let db: TestDatabase
let store: PostgresEventStore
let facts: PostgresReferralFacts
let world: Awaited<ReturnType<typeof createWorld>>

const id = (s: string) => s as ReferralId

beforeAll(async () => {
  db = await createTestDatabase()
  store = await createPostgresEventStore({ connectionString: db.url })
  facts = await createPostgresReferralFacts({ store, aggregate: referralAggregate() })
  world = await createWorld({ store, referralFacts: () => facts })
  await world.addSpecialist('spec-a', 1)
  await world.addSpecialist('spec-b', 1)
  for (const n of [1, 2, 3]) {
    world.clock.advance(60_000)
    await world.send(`r-${n}`)
  }
  // r-1: declined by its first holder, accepted and scheduled by the second.
  const first = (await world.holderOf('r-1')) as PracticeId
  world.clock.advance(3_600_000)
  await world.must(
    world.engine.referrals.execute(
      id('r-1'),
      { type: 'DeclineReferral', data: { reasonCode: 'capacity' } },
      await world.as(world.ownerOf(first)),
    ),
  )
  const second = (await world.holderOf('r-1')) as PracticeId
  const owner = await world.as(world.ownerOf(second))
  world.clock.advance(3_600_000)
  await world.must(world.engine.referrals.execute(id('r-1'), { type: 'AcceptReferral', data: {} }, owner))
  world.clock.advance(3_600_000)
  await world.must(
    world.engine.referrals.execute(
      id('r-1'),
      { type: 'ScheduleAppointment', data: { at: '2026-03-20T10:00:00.000Z' as never } },
      owner,
    ),
  )
  // r-2: cancelled by the sender.
  await world.must(
    world.engine.referrals.execute(
      id('r-2'),
      { type: 'CancelReferral', data: { reasonCode: 'duplicate' } },
      await world.as(world.ownerOf(world.ids.clinic)),
    ),
  )
})
afterAll(async () => {
  await store?.close()
  await db?.drop()
})

describe('referral facts in PostgreSQL', () => {
  it('holds the same rows as the in-memory projection over the same log', async () => {
    const inMemory = createReferralFactsIndex({ store, aggregate: referralAggregate() })
    const rows = await facts.facts({})
    expect(rows.map((r) => r.referralId)).toEqual(['r-1', 'r-2', 'r-3'])
    expect(rows).toEqual(await inMemory.facts({}))
    const r1 = rows[0]
    expect(r1).toMatchObject({ status: 'scheduled', declineCount: 1, deliveryCount: 2, route: 'pooled' })
    expect(r1?.acceptedAt).not.toBeNull()
    expect(r1?.appointmentAt).toBe('2026-03-20T10:00:00.000Z')
    expect(rows[1]).toMatchObject({ status: 'cancelled' })
  })

  it('filters by period and practice like the in-memory model', async () => {
    const inMemory = createReferralFactsIndex({ store, aggregate: referralAggregate() })
    const all = await facts.facts({})
    const second = all[1]?.sentAt
    for (const q of [
      { sentFrom: second },
      { sentTo: second },
      { practiceId: 'spec-a' as PracticeId },
      { practiceId: world.ids.clinic, sentFrom: second },
    ]) {
      const query = Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined))
      expect(await facts.facts(query)).toEqual(await inMemory.facts(query))
    }
  })

  it('aggregates every fact report in SQL to the cells the core computes from the same rows', async () => {
    const rows = await facts.facts({})
    for (const report of FACT_REPORTS) {
      for (const groupBy of [[], ['pool'], ['receivingPractice', 'week']] as const) {
        const options = {
          report,
          groupBy,
          now: world.clock.now(),
          viewer: { practiceIds: [world.ids.clinic] },
          threshold: 2,
        }
        const cells = await facts.report({}, options)
        expect(cells.length).toBeGreaterThan(0)
        expect(cells).toEqual(factReport(rows, options))
      }
    }
  })

  it('keeps no patient column and no PHI value', async () => {
    const columns = await store.pool.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'referral_facts'`,
      [store.schema],
    )
    expect(columns.rows.map((c) => c.column_name).filter((c) => /patient|phi|reason|note/.test(c))).toEqual([
      'return_reason',
    ])
    const dump = await store.pool.query<{ t: string }>(
      `SELECT string_agg(f::text, '|') AS t FROM ${store.schema}.referral_facts f`,
    )
    expect(dump.rows[0]?.t).not.toMatch(/Canary|HN-r-|pat-r-/)
  })

  it('is checkpointed and rebuilds from the log to the same rows', async () => {
    const before = await facts.facts({})
    const checkpoint = await store.pool.query<{ position: string }>(
      `SELECT position FROM ${store.schema}.projection_checkpoints WHERE name = $1`,
      [REFERRAL_FACTS_PROJECTION],
    )
    expect(BigInt(checkpoint.rows[0]?.position ?? '0')).toBe(await facts.projection.position())
    expect(await facts.projection.position()).toBeGreaterThan(0n)
    await store.pool.query(`UPDATE ${store.schema}.referral_facts SET status = 'tampered'`)
    await facts.rebuild()
    expect(await facts.facts({})).toEqual(before)
    // The rebuild folds the whole log in one batch (every referral's events together, one SELECT
    // and one multi-row upsert): the same rows as the in-memory projection's one-event-at-a-time fold.
    const inMemory = createReferralFactsIndex({ store, aggregate: referralAggregate() })
    expect(await facts.facts({})).toEqual(await inMemory.facts({}))
    expect((await facts.facts({})).find((r) => r.referralId === 'r-1')?.scheduledAt).not.toBeNull()
  })

  it("rebuilds to the incrementally built rows when batches split a referral's events", async () => {
    const incremental = await facts.facts({})
    const events = await store.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${store.schema}.events WHERE stream_id ^@ 'referral-'`,
    )
    expect(Number(events.rows[0]?.n)).toBeGreaterThan(6)
    // Batches of 2 and 3 events: every referral's history spans several transactions.
    for (const rebuildBatchSize of [2, 3]) {
      const small = await createPostgresReferralFacts({
        store,
        aggregate: referralAggregate(),
        rebuildBatchSize,
      })
      await small.rebuild()
      expect(await small.facts({})).toEqual(incremental)
    }
  })

  it('a rebuild leaves the same indexes it found (it drops the secondary ones while it writes)', async () => {
    const indexes = async () =>
      (
        await store.pool.query<{ def: string }>(
          `SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index
           WHERE indrelid = $1::regclass ORDER BY 1`,
          [`"${store.schema}".referral_facts`],
        )
      ).rows.map((r) => r.def)
    const before = await indexes()
    expect(before.length).toBeGreaterThanOrEqual(4)
    await facts.rebuild()
    expect(await indexes()).toEqual(before)
  })

  it('a rebuild that meets an undecodable event fails with its stream named and changes nothing', async () => {
    const rowsBefore = await store.pool.query<{ t: string }>(
      `SELECT string_agg(f::text, '|' ORDER BY referral_id) AS t FROM ${store.schema}.referral_facts f`,
    )
    const positionBefore = await facts.projection.position()
    const read = await store.readStream('referral-r-1' as never)()
    if (read._tag === 'Left') throw new Error(read.left.message)
    const template = read.right[0]
    if (template === undefined) throw new Error('no event in referral-r-1')
    const appended = await store.append({
      streamId: 'referral-corrupt' as never,
      expected: { kind: 'no_stream' } as never,
      events: [
        {
          id: 'evt-corrupt-1' as never,
          type: 'ReferralAccepted',
          schemaVersion: 1,
          data: { referralId: 'corrupt', acceptedAt: 'Canary not an instant' },
          metadata: template.metadata,
        },
      ],
    })()
    expect(appended._tag).toBe('Right')
    const failure = await facts.rebuild().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(String((failure as Error | undefined)?.message)).toMatch(/referral-corrupt/)
    expect(String((failure as Error | undefined)?.message)).not.toMatch(/Canary/)
    const rowsAfter = await store.pool.query<{ t: string }>(
      `SELECT string_agg(f::text, '|' ORDER BY referral_id) AS t FROM ${store.schema}.referral_facts f`,
    )
    expect(rowsAfter.rows[0]?.t).toBe(rowsBefore.rows[0]?.t)
    expect(await facts.projection.position()).toBe(positionBefore)
  })
})
