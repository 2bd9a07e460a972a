import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { FteMilli, PoolCommandBody, PoolEvent } from '../routing/codecs.js'
import { poolDecider } from '../routing/decider.js'
import type {
  CategoryId,
  CommandId,
  CorrelationId,
  PracticeId,
  ReferralId,
  RegionId,
  SpecialtyId,
} from '../shared/ids.js'
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
  /** A pool history made by the router itself (`poolDecider`), each event dated. */
  const history = () => {
    const events: { pool: string; at: Instant; event: PoolEvent }[] = []
    let state = poolDecider.initialState
    let n = 0
    const run = (day: number, body: PoolCommandBody) => {
      const decided = poolDecider.decide(
        {
          ...body,
          meta: {
            commandId: `cmd-${++n}` as CommandId,
            actor: { kind: 'system', component: 'test' },
            now: at(day * D),
            correlationId: 'corr' as CorrelationId,
          },
        } as Parameters<typeof poolDecider.decide>[0],
        state,
      )
      if (decided._tag === 'Left') throw new Error(decided.left.message)
      for (const event of decided.right) {
        state = poolDecider.evolve(state, event)
        events.push({ pool, at: at(day * D), event })
      }
      return decided.right
    }
    const sync = (day: number, id: string, fte: number, paused?: boolean) =>
      run(day, {
        type: 'SyncPoolMember',
        data: {
          practiceId: p(id),
          eligible: true,
          fteMilli: fte as FteMilli,
          insuranceNetworks: [],
          ...(paused === undefined ? {} : { paused }),
        },
      })
    const route = (day: number, referralId: string, excluded: readonly string[] = []) => {
      const [e] = run(day, {
        type: 'RouteReferral',
        data: {
          referralId: referralId as ReferralId,
          insuranceNetworkId: null,
          excludedPracticeIds: excluded.map(p),
        },
      })
      return e?.type === 'ReferralRouted' ? e.data.chosenPracticeId : null
    }
    const decline = (day: number, referralId: string, practiceId: string) =>
      run(day, {
        type: 'RecordDecline',
        data: { referralId: referralId as ReferralId, practiceId: p(practiceId), kind: 'decline' },
      })
    return { events, sync, route, decline }
  }
  const pool = 'north:ortho:knee:*'

  /**
   * Week 1 (from Monday 2026-01-05): a and b at FTE 1 route r1–r4 (plain least-count: a b a b),
   * then b pauses and r5 goes to a alone. Week 2: b resumes at FTE 0.5; r6 a, r7 b, r8 a (shares
   * 2/3 and 1/3); b declines r7, which goes to a (b excluded).
   */
  const twoWeeks = () => {
    const h = history()
    h.sync(0, 'a', 1000)
    h.sync(0, 'b', 1000)
    const week1 = [h.route(0, 'r1'), h.route(1, 'r2'), h.route(2, 'r3'), h.route(3, 'r4')]
    h.sync(4, 'b', 1000, true)
    week1.push(h.route(4, 'r5'))
    h.sync(7, 'b', 500, false)
    const week2 = [h.route(7, 'r6'), h.route(8, 'r7'), h.route(8, 'r8')]
    h.decline(9, 'r7', 'b')
    week2.push(h.route(9, 'r7', ['b']))
    return { events: h.events, week1, week2 }
  }

  it("entitlement over eligible stretches, max |lag|, FTE-normalised spread, longest run, per week; the router's own lags", () => {
    const { events, week1, week2 } = twoWeeks()
    expect(week1).toEqual(['a', 'b', 'a', 'b', 'a'])
    expect(week2).toEqual(['a', 'b', 'a', 'a'])
    const [w1, w2] = weeklyFairness(events)
    // Week 1: entitlement a = 4 × 1/2 + 1 (r5: a alone) = 3, b = 2; received a 3, b 2.
    // Week-local lags after each decision (a, b): (−.5, .5) (0, 0) (−.5, .5) (0, 0) (0, 0) → 0.5.
    // Per FTE: a 3, b 2 → spread 1. Runs: a b a b a → 1. The router's λ is the same (b leaves at 0).
    expect(w1).toEqual({
      pool,
      week: '2026-01-05',
      decisions: 5,
      members: [
        {
          practiceId: 'a',
          fteMilli: 1000,
          eligibleDecisions: 5,
          received: 3,
          entitlement: 3,
          lag: 0,
          routerLag: 0,
        },
        {
          practiceId: 'b',
          fteMilli: 1000,
          eligibleDecisions: 4,
          received: 2,
          entitlement: 2,
          lag: 0,
          routerLag: null,
        },
      ],
      maxAbsLag: 0.5,
      fteNormalisedSpread: 1,
      longestRun: 1,
      routerMaxAbsLag: 0.5,
      outsideInvariant: false,
    })
    // Week 2: r6–r8 with shares a 2/3, b 1/3: lags (−1/3, 1/3) (1/3, −1/3) (0, 0). b declines r7:
    // the router refunds it (λ_b + 1 = 1) and gives the slot back, so r7's second decision, to a
    // alone, does not advance the pool: λ_a = 0 − 1 = −1, λ_b = 1 — within the bound after a
    // decline (λ < LAG_CAP + refunded slots, λ > −2(n − 1)). Week-local, r7' counts for a alone:
    // entitlement a = 2 + 1 = 3, b = 1; received a 3, b 1 (its declined offer still counts here).
    expect(w2).toMatchObject({
      week: '2026-01-12',
      decisions: 4,
      maxAbsLag: 0.3333,
      fteNormalisedSpread: 1,
      longestRun: 2,
      routerMaxAbsLag: 1,
      outsideInvariant: false,
    })
    expect(w2?.members).toEqual([
      {
        practiceId: 'a',
        fteMilli: 1000,
        eligibleDecisions: 4,
        received: 3,
        entitlement: 3,
        lag: 0,
        routerLag: -1,
      },
      {
        practiceId: 'b',
        fteMilli: 500,
        eligibleDecisions: 3,
        received: 1,
        entitlement: 1,
        lag: 0,
        routerLag: 1,
      },
    ])
  })

  it("flags the week whose recorded decisions break the router's bound (a forged choice), not the others", () => {
    const { events } = twoWeeks()
    // r2 recorded as given to a: a has 2 of the first 2 referrals with a share of 1 — λ_a = −1 —
    // and r3, still recorded as a's, makes it 3 of 3 with a share of 1.5: λ_a = −1.5, λ_b = 1.5.
    const forged = events.map((e) =>
      e.event.type === 'ReferralRouted' && e.event.data.referralId === 'r2'
        ? { ...e, event: { ...e.event, data: { ...e.event.data, chosenPracticeId: p('a') } } as PoolEvent }
        : e,
    )
    const [w1, w2] = weeklyFairness(forged)
    expect(w1?.outsideInvariant).toBe(true)
    expect(w1?.routerMaxAbsLag).toBe(1.5)
    expect(w2?.outsideInvariant).toBe(false)
  })

  it('replays the events before the period (marked `before`) without reporting their weeks', () => {
    const { events } = twoWeeks()
    const monday2 = at(7 * D)
    const marked = events.map((e) => (e.at < monday2 ? { ...e, before: true as const } : e))
    const weeks = weeklyFairness(marked)
    expect(weeks.map((w) => w.week)).toEqual(['2026-01-12'])
    // The same router lags as with the whole history reported: the state carried over.
    expect(weeks[0]).toEqual(weeklyFairness(events)[1])
    // Without the earlier history the router's state is missing (b never joined): not the same.
    expect(weeklyFairness(events.filter((e) => e.at >= monday2))[0]).not.toEqual(weeks[0])
  })
})
