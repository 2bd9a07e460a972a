import { type Instant, type PracticeId, type ReferralFacts, referralAggregate } from '@referrals/core'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresEventStore, type PostgresEventStore } from './event-store.js'
import { createPostgresReferralFacts, type PostgresReferralFacts } from './referral-facts.js'
import { factArbitraries, factCase, writeFactsRows } from './referral-facts.test-support.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

// The SQL aggregation of the fact reports (referral-facts-report.ts) against the reference, the
// core's `factReport` over the same rows: random facts rows are written to the table, and every
// report, grouping, filter, period, practice scope, viewer and threshold must give the same cells.

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

const { rowsArb, requestArb } = factArbitraries('2026-03-01T00:00:00.000Z', 40)

const writeRows = (rows: readonly ReferralFacts[]) =>
  writeFactsRows(store.pool, `"${store.schema}".referral_facts`, rows)

describe('fact reports aggregated in SQL', () => {
  it('equal the core computation over the same rows, for any report, grouping, filter and viewer', async () => {
    await fc.assert(
      fc.asyncProperty(
        rowsArb,
        fc.array(requestArb, { minLength: 1, maxLength: 6 }),
        async (rows, requests) => {
          await writeRows(rows)
          for (const r of requests) {
            const { query: q, options, reference } = factCase(rows, r, r.now)
            expect(await facts.report(q, options)).toEqual(reference)
          }
        },
      ),
      { numRuns: 100 },
    )
  }, 120_000)

  it('computes a hand-checked funnel, timings and wait-time cell', async () => {
    const base = {
      senderPracticeId: 'p-a',
      regionId: 'north',
      specialtyId: 'cardio',
      categoryId: 'c1',
      subcategoryId: null,
      urgency: 'routine',
      route: 'pooled',
      firstDeliveredAt: null,
      deliveredAt: null,
      acceptedAt: null,
      scheduledAt: null,
      appointmentAt: null,
      completedAt: null,
      cancelledAt: null,
      returnedAt: null,
      returnReason: null,
      unassignedSince: null,
      deliveryCount: 1,
      declineCount: 0,
      expiryCount: 0,
      noShowCount: 0,
      channel: null,
      campaign: null,
      location: null,
      serviceLine: null,
      referringPracticeId: null,
      updatedAt: '2026-03-10T00:00:00.000Z',
    }
    const rows = [
      {
        ...base,
        referralId: 'r-1',
        receivingPracticeId: 'p-b',
        status: 'scheduled',
        sentAt: '2026-03-01T00:00:00.000Z',
        acceptedAt: '2026-03-01T02:00:00.000Z',
        scheduledAt: '2026-03-01T03:00:00.000Z',
        appointmentAt: '2026-03-05T00:00:00.000Z',
        declineCount: 1,
        deliveryCount: 2,
      },
      {
        ...base,
        referralId: 'r-2',
        receivingPracticeId: 'p-b',
        status: 'scheduled',
        sentAt: '2026-03-02T00:00:00.000Z',
        acceptedAt: '2026-03-02T06:00:00.000Z',
        scheduledAt: '2026-03-02T06:30:00.000Z',
        appointmentAt: '2026-03-04T00:00:00.000Z',
      },
      {
        ...base,
        referralId: 'r-3',
        receivingPracticeId: null,
        status: 'unassigned',
        sentAt: '2026-03-03T00:00:00.000Z',
        unassignedSince: '2026-03-03T12:00:00.000Z',
        deliveryCount: 0,
      },
    ] as unknown as ReferralFacts[]
    await writeRows(rows)
    const common = { now: '2026-03-04T00:00:00.000Z' as Instant, viewer: { practiceIds: [] }, threshold: 1 }
    const [funnel] = (await facts.report({}, { ...common, report: 'funnel', groupBy: [] })) as {
      figures: Record<string, unknown>
    }[]
    expect(funnel?.figures).toMatchObject({
      sent: 3,
      accepted: 2,
      scheduled: 2,
      deliveries: 3,
      declines: 1,
      declineRate: 1 / 3,
      unassigned: 1,
      backlog: { unassigned: 1, age: { n: 1, p50: 12, p90: 12 }, oldestHours: 12 },
    })
    const [timings] = (await facts.report({}, { ...common, report: 'timings', groupBy: [] })) as {
      figures: Record<string, unknown>
    }[]
    // Nearest rank of {2, 6}: p50 = 2, p90 = 6.
    expect(timings?.figures).toMatchObject({ timeToAccept: { n: 2, p50: 2, p90: 6 } })
    expect(timings?.figures).toMatchObject({ timeToSchedule: { n: 2, p50: 3, p90: 6.5 } })
    const [waits] = (await facts.report({}, { ...common, report: 'wait-times', groupBy: ['pool'] })) as {
      group: Record<string, string>
      figures: Record<string, unknown>
    }[]
    expect(waits?.group).toEqual({ pool: 'north:cardio:c1:*' })
    // Waits of p-b: 4 and 2 days; its median (nearest rank) is 2.
    expect(waits?.figures).toMatchObject({
      referralsWithAppointment: 2,
      specialists: [{ practiceId: 'p-b', n: 2, p50Days: 2, p90Days: 4 }],
      medianWait: { min: 2, max: 2, range: 0, mean: 2, sd: 0, cv: 0 },
    })
    // Three referrals (< 5): shown to p-b only if p-b held all of them; r-3 is held by no one.
    const asHolder = { ...common, viewer: { practiceIds: ['p-b' as PracticeId] }, threshold: 5 }
    const [mixed] = (await facts.report({}, { ...asHolder, report: 'attribution', groupBy: [] })) as {
      referrals: unknown
      suppressed: boolean
    }[]
    expect(mixed).toMatchObject({ referrals: '< 5', suppressed: true })
    const [own] = (await facts.report(
      { sentTo: '2026-03-03T00:00:00.000Z' as Instant },
      { ...asHolder, report: 'attribution', groupBy: [] },
    )) as { referrals: unknown; suppressed: boolean }[]
    expect(own).toMatchObject({ referrals: 2, suppressed: false })
  })
})
