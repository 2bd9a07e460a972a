import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { PoolEvent } from '../routing/codecs.js'
import type { CategoryId, PracticeId, ReferralId, RegionId, SpecialtyId } from '../shared/ids.js'
import { addMillis, type Instant } from '../shared/time.js'
import type { ReferralFacts } from './facts.js'
import { weeklyFairness } from './fairness.js'
import {
  backlogOf,
  computeReport,
  funnelOf,
  groupFacts,
  isoWeekOf,
  percentile,
  REPORT_DIMENSIONS,
  timingsOf,
  waitTimesOf,
  waitTimesReport,
} from './reports.js'

// Expected values below are worked out by hand in the comments next to them, never taken from a
// run of the code under test.

const T0 = '2026-01-05T09:00:00.000Z' as Instant // a Monday
const H = 3_600_000
const D = 24 * H
const at = (ms: number): Instant => addMillis(T0, ms)
const p = (s: string) => s as PracticeId

let seq = 0
const row = (overrides: Partial<ReferralFacts> = {}): ReferralFacts => ({
  referralId: `r-${++seq}` as ReferralId,
  senderPracticeId: p('clinic'),
  receivingPracticeId: null,
  regionId: 'north' as RegionId,
  specialtyId: 'ortho' as SpecialtyId,
  categoryId: 'knee' as CategoryId,
  subcategoryId: null,
  urgency: 'routine',
  route: 'pooled',
  status: 'unassigned',
  sentAt: T0,
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
  deliveryCount: 0,
  declineCount: 0,
  expiryCount: 0,
  noShowCount: 0,
  channel: null,
  campaign: null,
  location: null,
  serviceLine: null,
  referringPracticeId: null,
  updatedAt: T0,
  ...overrides,
})

const delivered = (practice: string, extra: Partial<ReferralFacts> = {}) =>
  row({
    status: 'pending',
    receivingPracticeId: p(practice),
    firstDeliveredAt: at(0),
    deliveredAt: at(0),
    deliveryCount: 1,
    ...extra,
  })

describe('percentile (nearest rank)', () => {
  it('hand examples', () => {
    // n = 4: p50 → rank ceil(2) = 2 → 2; p90 → rank ceil(3.6) = 4 → 9
    expect(percentile([9, 1, 2, 3], 0.5)).toBe(2)
    expect(percentile([9, 1, 2, 3], 0.9)).toBe(9)
    expect(percentile([7], 0.9)).toBe(7)
    expect(percentile([], 0.5)).toBeNull()
  })

  it('is a value with at least p of the values at or below it and fewer than p strictly below', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 50 }),
        fc.constantFrom(0.1, 0.5, 0.9, 1),
        (xs, q) => {
          const v = percentile(xs, q) as number
          expect(xs).toContain(v)
          const need = Math.ceil(q * xs.length)
          expect(xs.filter((x) => x <= v).length).toBeGreaterThanOrEqual(need)
          expect(xs.filter((x) => x < v).length).toBeLessThan(need)
        },
      ),
    )
  })
})

describe('ISO weeks', () => {
  it('maps an instant to the Monday of its week (UTC)', () => {
    expect(isoWeekOf('2026-01-05T09:00:00.000Z' as Instant)).toBe('2026-01-05') // Monday
    expect(isoWeekOf('2026-01-11T23:59:59.999Z' as Instant)).toBe('2026-01-05') // Sunday
    expect(isoWeekOf('2026-01-04T12:00:00.000Z' as Instant)).toBe('2025-12-29') // Sunday before
    expect(isoWeekOf('1970-01-01T00:00:00.000Z' as Instant)).toBe('1969-12-29') // a Thursday
  })
})

describe('funnel', () => {
  it('counts each stage and the drop-outs, hand example', () => {
    const rows = [
      row(), // sent only, waiting
      delivered('a', { declineCount: 1, deliveryCount: 2 }), // declined once, pending at a 2nd
      delivered('a', { status: 'accepted', acceptedAt: at(H) }),
      delivered('a', { status: 'scheduled', acceptedAt: at(H), scheduledAt: at(2 * H), noShowCount: 1 }),
      delivered('b', { status: 'completed', acceptedAt: at(H), scheduledAt: at(2 * H), completedAt: at(D) }),
      delivered('b', { status: 'cancelled', cancelledAt: at(H), expiryCount: 1 }),
      delivered('b', { status: 'cancelled', acceptedAt: at(H), cancelledAt: at(2 * H) }),
      delivered('b', {
        status: 'cancelled',
        acceptedAt: at(H),
        scheduledAt: at(2 * H),
        cancelledAt: at(3 * H),
      }),
      row({ status: 'returned', returnedAt: at(H), returnReason: 'pool_exhausted' }),
    ]
    expect(funnelOf(rows)).toEqual({
      sent: 9,
      delivered: 7,
      accepted: 5, // rows 3, 4, 5, 7, 8
      scheduled: 3, // rows 4, 5, 8
      completed: 1,
      deliveries: 8, // 2 + 6 × 1
      declines: 1,
      expiries: 1,
      noShows: 1,
      cancelledBeforeAccept: 1,
      cancelledAfterAccept: 1,
      cancelledAfterSchedule: 1,
      returned: 1,
      unassigned: 1,
      declineRate: 1 / 8,
      expiryRate: 1 / 8,
    })
  })

  it('has no rates without deliveries', () => {
    expect(funnelOf([row()])).toMatchObject({ sent: 1, declineRate: null, expiryRate: null })
  })
})

describe('timings', () => {
  it('time to accept, schedule and complete in hours, p50 and p90', () => {
    const rows = [
      delivered('a', { acceptedAt: at(2 * H), scheduledAt: at(5 * H), completedAt: at(10 * D) }),
      delivered('a', { acceptedAt: at(4 * H), scheduledAt: at(30 * H) }),
      delivered('a', { acceptedAt: at(10 * H) }),
      row(),
    ]
    // accept: [2, 4, 10] → p50 rank ceil(1.5) = 2 → 4; p90 rank ceil(2.7) = 3 → 10
    // schedule: [5, 30] → p50 rank 1 → 5; p90 rank 2 → 30
    // complete: [240] → 240
    expect(timingsOf(rows)).toEqual({
      timeToAccept: { n: 3, p50: 4, p90: 10 },
      timeToSchedule: { n: 2, p50: 5, p90: 30 },
      timeToComplete: { n: 1, p50: 240, p90: 240 },
    })
  })
})

describe('wait times', () => {
  it('per specialist in days and the dispersion of their medians', () => {
    const waits = (practice: string, days: number) =>
      delivered(practice, {
        status: 'scheduled',
        acceptedAt: at(H),
        scheduledAt: at(H),
        appointmentAt: at(days * D),
      })
    const rows = [waits('a', 10), waits('a', 20), waits('a', 30), waits('b', 40), row()]
    // a: [10, 20, 30] → p50 20, p90 30; b: [40]; medians [20, 40]: mean 30, sd sqrt((100 + 100) / 2) = 10
    expect(waitTimesOf(rows)).toEqual({
      referralsWithAppointment: 4,
      specialists: [
        { practiceId: 'a', n: 3, p50Days: 20, p90Days: 30 },
        { practiceId: 'b', n: 1, p50Days: 40, p90Days: 40 },
      ],
      medianWait: { min: 20, max: 40, range: 20, mean: 30, sd: 10, cv: 10 / 30 },
    })
  })

  it('inside a cell shown in full, a specialist with fewer than 5 referrals is suppressed unless it is the caller', () => {
    const waits = (practice: string, days: number) =>
      delivered(practice, { status: 'scheduled', appointmentAt: at(days * D) })
    const rows = [1, 2, 3, 4, 5].map((d) => waits('a', d)).concat([waits('b', 9)])
    const [cell] = waitTimesReport(rows, { groupBy: [], viewer: { practiceIds: [] } })
    expect(cell?.suppressed).toBe(false)
    expect(cell?.figures.specialists).toEqual([
      { practiceId: 'a', n: 5, p50Days: 3, p90Days: 5 },
      { practiceId: 'b', n: '< 5', p50Days: '< 5', p90Days: '< 5' },
    ])
    const [own] = waitTimesReport(rows, { groupBy: [], viewer: { practiceIds: [p('b')] } })
    expect(own?.figures.specialists[1]).toEqual({ practiceId: 'b', n: 1, p50Days: 9, p90Days: 9 })
  })
})

describe('backlog', () => {
  it('counts the unassigned referrals and their age in hours at `now`', () => {
    const rows = [
      row({ unassignedSince: at(0) }),
      row({ unassignedSince: at(10 * H) }),
      row({ unassignedSince: at(20 * H) }),
      delivered('a'),
    ]
    // now = T0 + 30 h: ages [30, 20, 10] → p50 20, p90 30, oldest 30
    expect(backlogOf(rows, at(30 * H))).toEqual({
      unassigned: 3,
      age: { n: 3, p50: 20, p90: 30 },
      oldestHours: 30,
    })
  })
})

describe('grouping, filters and small-number suppression', () => {
  it('every row lands in exactly one group, whose key is the row’s own values', () => {
    const arbRow = fc
      .record({
        receiving: fc.constantFrom('a', 'b', null),
        urgency: fc.constantFrom('routine', 'urgent', 'emergent' as const),
        channel: fc.constantFrom('web', 'fax', null),
        day: fc.integer({ min: 0, max: 40 }),
      })
      .map((r) =>
        row({
          receivingPracticeId: r.receiving === null ? null : p(r.receiving),
          urgency: r.urgency,
          channel: r.channel,
          sentAt: at(r.day * D),
        }),
      )
    fc.assert(
      fc.property(
        fc.array(arbRow, { maxLength: 40 }),
        fc.subarray([...REPORT_DIMENSIONS], { maxLength: 3 }),
        (rows, by) => {
          const groups = groupFacts(rows, by)
          expect(groups.reduce((s, g) => s + g.rows.length, 0)).toBe(rows.length)
          const cells = computeReport(
            rows,
            { groupBy: by, viewer: { practiceIds: [] }, threshold: 0 },
            funnelOf,
          )
          expect(cells.reduce((s, c) => s + (c.referrals as number), 0)).toBe(rows.length)
        },
      ),
    )
  })

  it('a cell of fewer than 5 referrals reads "< 5" to a caller outside the receiving practice', () => {
    const rows = [
      ...[1, 2, 3, 4].map(() => delivered('a', { urgency: 'urgent' })),
      ...[1, 2, 3, 4, 5].map(() => delivered('b', { urgency: 'routine' })),
    ]
    const outsider = computeReport(
      rows,
      { groupBy: ['urgency'], viewer: { practiceIds: [p('clinic')] } },
      funnelOf,
    )
    expect(outsider.map((c) => [c.group, c.referrals, c.suppressed])).toEqual([
      [{ urgency: 'routine' }, 5, false],
      [{ urgency: 'urgent' }, '< 5', true],
    ])
    expect(outsider[1]?.figures.sent).toBe('< 5')
    expect(outsider[1]?.figures.declineRate).toBe('< 5')
    // The receiving practice sees its own small cell.
    const own = computeReport(rows, { groupBy: ['urgency'], viewer: { practiceIds: [p('a')] } }, funnelOf)
    expect(own[1]).toMatchObject({ referrals: 4, suppressed: false, figures: { sent: 4 } })
    // The threshold is configurable.
    const three = computeReport(
      rows,
      { groupBy: ['urgency'], viewer: { practiceIds: [] }, threshold: 3 },
      funnelOf,
    )
    expect(three[1]).toMatchObject({ referrals: 4, suppressed: false })
    const ten = computeReport(rows, { groupBy: [], viewer: { practiceIds: [] }, threshold: 10 }, funnelOf)
    expect(ten[0]).toMatchObject({ referrals: '< 10', suppressed: true })
  })

  it('filters by dimension values', () => {
    const rows = [delivered('a', { channel: 'web' }), delivered('b'), delivered('a')]
    const cells = computeReport(
      rows,
      {
        groupBy: [],
        filters: { receivingPractice: 'a', channel: '(none)' },
        viewer: { practiceIds: [] },
        threshold: 0,
      },
      funnelOf,
    )
    expect(cells.map((c) => c.referrals)).toEqual([1])
  })
})

describe('weekly fairness from recorded decisions', () => {
  const routed = (chosen: string, candidates: readonly (readonly [string, number])[]): PoolEvent =>
    ({
      type: 'ReferralRouted',
      data: {
        decisionId: `d-${++seq}`,
        referralId: `r-${seq}`,
        chosenPracticeId: chosen,
        candidates: candidates.map(([practiceId, fteMilli]) => ({
          practiceId,
          fteMilli,
          count: 0,
          eligible: true,
          startUnits: 0,
        })),
      },
    }) as unknown as PoolEvent
  const pool = 'north:ortho:knee:*'
  const dated = (day: number, event: PoolEvent) => ({ pool, at: at(day * D), event })

  it('entitlement over eligible stretches, max |lag|, FTE-normalised spread, longest run, per week', () => {
    const both = [
      ['a', 1000],
      ['b', 1000],
    ] as const
    const events = [
      dated(0, routed('a', both)),
      dated(1, routed('b', both)),
      dated(2, routed('a', both)),
      dated(3, routed('a', both)),
      // b is paused (not a candidate): a's decision does not put b behind
      dated(4, routed('a', [['a', 1000]])),
      dated(4, { type: 'MemberPaused', data: { practiceId: p('b') } } as PoolEvent),
      // next week: b at half time
      dated(
        7,
        routed('a', [
          ['a', 1000],
          ['b', 500],
        ]),
      ),
      dated(
        8,
        routed('b', [
          ['a', 1000],
          ['b', 500],
        ]),
      ),
      dated(
        9,
        routed('a', [
          ['a', 1000],
          ['b', 500],
        ]),
      ),
    ]
    const [w1, w2] = weeklyFairness(events)
    // Week 1: entitlement a = 4 × 1/2 + 1 = 3, b = 2; received a 4, b 1.
    // Lags after each decision (a, b): (−.5, .5) (0, 0) (−.5, .5) (−1, 1) (−1, 1) → max |lag| 1.
    // Per FTE: a 4 / 1, b 1 / 1 → spread 3. Runs: a a a at decisions 3–5 → 3.
    expect(w1).toEqual({
      pool,
      week: '2026-01-05',
      decisions: 5,
      members: [
        { practiceId: 'a', fteMilli: 1000, eligibleDecisions: 5, received: 4, entitlement: 3, lag: -1 },
        { practiceId: 'b', fteMilli: 1000, eligibleDecisions: 4, received: 1, entitlement: 2, lag: 1 },
      ],
      maxAbsLag: 1,
      fteNormalisedSpread: 3,
      longestRun: 3,
      outsideInvariant: true,
    })
    // Week 2: shares a 2/3, b 1/3 per decision; entitlement a 2, b 1; received a 2, b 1.
    // Lags (a): 2/3 − 1 = −1/3, 4/3 − 1 = 1/3, 2 − 2 = 0; (b): 1/3, 2/3 − 1 = −1/3, 0 → max 1/3.
    // Per FTE: a 2 / 1 = 2, b 1 / 0.5 = 2 → spread 0.
    expect(w2).toMatchObject({
      week: '2026-01-12',
      decisions: 3,
      maxAbsLag: 0.3333,
      fteNormalisedSpread: 0,
      longestRun: 1,
      outsideInvariant: false,
    })
    expect(w2?.members).toEqual([
      { practiceId: 'a', fteMilli: 1000, eligibleDecisions: 3, received: 2, entitlement: 2, lag: 0 },
      { practiceId: 'b', fteMilli: 500, eligibleDecisions: 3, received: 1, entitlement: 1, lag: 0 },
    ])
  })
})
