/**
 * Backtests replay declines, expiries, direct referrals, releases and membership changes, in stored
 * order. Stored histories are written by the pool decider; every expected figure below is worked
 * out by hand in the comments (none is computed by the code under test).
 */
import fc from 'fast-check'
import { isLeft } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { CommandMeta } from '../shared/decider.js'
import type { CommandId, CorrelationId, InsuranceNetworkId, PracticeId, ReferralId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { backtest, replayUnder } from './backtest.js'
import type { FteMilli, PoolCommandBody, PoolEvent, RoutingPolicy } from './codecs.js'
import { makePoolDecider, type PoolState, poolDecider, poolEngine, routingPolicyV2 } from './decider.js'

const meta: CommandMeta = {
  commandId: 'cmd' as CommandId,
  actor: { kind: 'system', component: 'test' },
  now: '2026-01-01T00:00:00.000Z' as Instant,
  correlationId: 'corr-1' as CorrelationId,
}

/** A pool run through the decider (commands it rejects are dropped when `lenient`). */
class Pool {
  readonly log: PoolEvent[] = []
  state: PoolState
  private n = 0
  /** Practices that declined (or let expire) each referral, as the referral aggregate keeps them. */
  readonly declinedBy = new Map<string, string[]>()

  constructor(
    readonly decider = poolDecider,
    readonly lenient = false,
  ) {
    this.state = decider.initialState
  }

  run(body: PoolCommandBody): readonly PoolEvent[] {
    const result = this.decider.decide(
      { ...body, meta: { ...meta, commandId: `cmd-${++this.n}` as CommandId } } as Parameters<
        typeof poolDecider.decide
      >[0],
      this.state,
    )
    if (isLeft(result)) {
      if (this.lenient) return []
      throw new Error(`${result.left.code}: ${result.left.message}`)
    }
    for (const e of result.right) {
      this.log.push(e)
      this.state = this.decider.evolve(this.state, e)
    }
    return result.right
  }

  sync(id: string, fte: number, opts: { eligible?: boolean; paused?: boolean; networks?: string[] } = {}) {
    this.run({
      type: 'SyncPoolMember',
      data: {
        practiceId: id as PracticeId,
        eligible: opts.eligible ?? true,
        fteMilli: fte as FteMilli,
        insuranceNetworks: (opts.networks ?? []) as InsuranceNetworkId[],
        ...(opts.paused === undefined ? {} : { paused: opts.paused }),
      },
    })
  }

  /** Routes (or re-routes) a referral, excluding whoever declined it so far. */
  route(referralId: string, network: string | null = null): string | null {
    const [e] = this.run({
      type: 'RouteReferral',
      data: {
        referralId: referralId as ReferralId,
        insuranceNetworkId: network as InsuranceNetworkId | null,
        excludedPracticeIds: (this.declinedBy.get(referralId) ?? []) as PracticeId[],
      },
    })
    return e?.type === 'ReferralRouted' ? e.data.chosenPracticeId : null
  }

  /** The holder declines (or lets expire) the referral. */
  decline(referralId: string, kind: 'decline' | 'expiry' = 'decline'): void {
    const held = poolEngine(this.state).referral(referralId)
    if (held === undefined) throw new Error(`${referralId} is not held`)
    const done = this.run({
      type: 'RecordDecline',
      data: { referralId: referralId as ReferralId, practiceId: held.practiceId, kind },
    })
    if (done.length > 0)
      this.declinedBy.set(referralId, [...(this.declinedBy.get(referralId) ?? []), held.practiceId])
  }

  direct(referralId: string, practiceId: string): void {
    this.run({
      type: 'RecordDirectReferral',
      data: { referralId: referralId as ReferralId, practiceId: practiceId as PracticeId },
    })
  }

  release(referralId: string): void {
    this.run({ type: 'ReleaseReferral', data: { referralId: referralId as ReferralId } })
  }
}

const chosen = (log: readonly PoolEvent[]) =>
  log.flatMap((e) =>
    e.type === 'ReferralRouted'
      ? [`${e.data.referralId}→${e.data.chosenPracticeId}`]
      : e.type === 'RoutingFoundNoCandidate'
        ? [`${e.data.referralId}→none`]
        : [],
  )
const replayed = (decisions: readonly { referralId: string; chosen: string | null; skipped: boolean }[]) =>
  decisions.map((d) => `${d.referralId}→${d.skipped ? 'skipped' : (d.chosen ?? 'none')}`)
const member = (report: { members: readonly { practiceId: string }[] }, id: string) =>
  report.members.find((m) => m.practiceId === id)

describe('backtest replays declines where the candidate sent the referral', () => {
  /**
   * Given a (2.0 FTE) and b (1.0 FTE), W = 3000: ours routes r1→a (both start at 0; F_a = 1.5 <
   * F_b = 3), r2→b (V = 1: a's start 1.5 is not due, b's 0 is), r3→a, r4→a (V = 3: F_a = 4.5 <
   * F_b = 6); a declines r4 (refunded), r4 is re-offered without a → b, and r5→a.
   */
  const history = () => {
    const pool = new Pool()
    pool.sync('a', 2000)
    pool.sync('b', 1000)
    for (const r of ['r1', 'r2', 'r3', 'r4']) pool.route(r)
    pool.decline('r4')
    pool.route('r4')
    pool.route('r5')
    return pool.log
  }

  it('given that history, the recorded figures count the decline, the refund and the re-offer', () => {
    const log = history()
    expect(chosen(log)).toEqual(['r1→a', 'r2→b', 'r3→a', 'r4→a', 'r4→b', 'r5→a'])
    const { recorded, baseline } = backtest(log, { kind: 'round-robin' })
    // Shares: r1, r2, r3, r5 split 2/3 : 1/3 (a 8/3, b 4/3); r4's first split is refunded with the
    // decline; its re-offer had one candidate, b (+1). a: 8/3 vs load 3; b: 7/3 vs load 2.
    expect(member(recorded, 'a')).toEqual({
      practiceId: 'a',
      fteMilli: 2000,
      count: 3,
      offered: 4,
      declined: 1,
      expired: 0,
      direct: 0,
      released: 0,
      held: 3,
      fairShare: 2.6667,
      lag: -0.3333,
    })
    expect(member(recorded, 'b')).toMatchObject({
      count: 2,
      offered: 2,
      held: 2,
      fairShare: 2.3333,
      lag: 0.3333,
    })
    expect(recorded).toMatchObject({ routed: 6, unrouted: 0, declines: 1, expiries: 0 })
    expect(recorded.skipped).toEqual({ offers: 0, declines: 0, directs: 0, releases: 0 })
    // Ours replayed under the history's own policy is the history.
    expect(baseline).toEqual({ ...recorded, policy: 'ours' })
  })

  it('when round-robin sends r4 to b, b keeps it: the decline and the re-offer are skipped', () => {
    const result = backtest(history(), { kind: 'round-robin' })
    // Round-robin: r1→a, r2→b, r3→a (wraps), r4→b; a never had r4, so its decline does not
    // happen and r4's re-offer is skipped; r5→a (after b).
    expect(replayed(result.candidate.decisions)).toEqual([
      'r1→a',
      'r2→b',
      'r3→a',
      'r4→b',
      'r4→skipped',
      'r5→a',
    ])
    expect(result.candidate.skipped).toEqual({ offers: 1, declines: 1, directs: 0, releases: 0 })
    expect(result.candidate).toMatchObject({ routed: 5, declines: 0 })
    // Five charged referrals, each split 2/3 : 1/3: a 10/3 vs 3, b 5/3 vs 2.
    expect(member(result.candidate, 'a')).toMatchObject({ count: 3, offered: 3, declined: 0, held: 3 })
    expect(member(result.candidate, 'a')).toMatchObject({ fairShare: 3.3333, lag: 0.3333 })
    expect(member(result.candidate, 'b')).toMatchObject({
      count: 2,
      held: 2,
      fairShare: 1.6667,
      lag: -0.3333,
    })
    // r4's first offer (a vs b) and its re-offer (b vs skipped) differ.
    expect(result.differingDecisions).toBe(2)
    expect(result.arrivals).toBe(6)
  })

  it('when least-count also offers r4 to a, the decline is replayed and refunded, as recorded', () => {
    // count/FTE: r1 a (tie, first), r2 b (0 < 1/2), r3 a (1/2 < 1), r4 a (1/1000 each: tie, first);
    // a declines, refunded (back to 2), r4 re-offered without a → b; r5 a (2/2000 < 2/1000).
    const result = backtest(history(), { kind: 'least-count' })
    expect(replayed(result.candidate.decisions)).toEqual(['r1→a', 'r2→b', 'r3→a', 'r4→a', 'r4→b', 'r5→a'])
    expect(result.candidate.skipped).toEqual({ offers: 0, declines: 0, directs: 0, releases: 0 })
    expect(member(result.candidate, 'a')).toMatchObject({ count: 3, declined: 1, held: 3 })
    expect(result.differingDecisions).toBe(0)
  })

  it('with onDecline "keep", the decliner stays charged: load 4 while it holds 3', () => {
    // r1-r4 as above (a 3); the decline is kept (a stays at 3); r4→b (b 2); r5: 3/2000 < 2/1000 → a.
    const result = backtest(history(), { kind: 'least-count', load: { onDecline: 'keep' } })
    expect(replayed(result.candidate.decisions)).toEqual(['r1→a', 'r2→b', 'r3→a', 'r4→a', 'r4→b', 'r5→a'])
    expect(member(result.candidate, 'a')).toMatchObject({ count: 4, held: 3, declined: 1 })
    // a's shares: r1-r5 split 2/3 (10/3) — r4's first split stays with the kept charge — b +1 for r4's re-offer.
    expect(member(result.candidate, 'a')).toMatchObject({ fairShare: 3.3333, lag: -0.6667 })
    expect(member(result.candidate, 'b')).toMatchObject({ count: 2, fairShare: 2.6667, lag: 0.6667 })
  })

  it('an expiry is replayed like a decline, and counted as an expiry', () => {
    const pool = new Pool()
    pool.sync('a', 1000)
    pool.sync('b', 1000)
    pool.route('r1') // → a (tie)
    pool.decline('r1', 'expiry')
    pool.route('r1') // → b, a excluded
    expect(chosen(pool.log)).toEqual(['r1→a', 'r1→b'])
    const result = backtest(pool.log, { kind: 'round-robin' })
    // Round-robin: r1→a, a lets it expire, r1 re-offered without a → b.
    expect(replayed(result.candidate.decisions)).toEqual(['r1→a', 'r1→b'])
    expect(result.candidate).toMatchObject({ expiries: 1, declines: 0 })
    expect(member(result.candidate, 'a')).toMatchObject({ expired: 1, count: 0, held: 0 })
    expect(member(result.candidate, 'b')).toMatchObject({ count: 1, held: 1 })
  })
})

describe('backtest replays direct referrals and releases', () => {
  /**
   * Given a and b (1.0 FTE each, W = 2000): ours routes r1→a; d1 goes direct to b (not counted:
   * the policy does not count directs); r2→b (V = 1: a's start 2 is not due); r1 is released (a
   * refunded, its slot given back); r3→a (a's start is 0 again, F_a = 2 < F_b = 4).
   */
  const history = () => {
    const pool = new Pool()
    pool.sync('a', 1000)
    pool.sync('b', 1000)
    pool.route('r1')
    pool.direct('d1', 'b')
    pool.route('r2')
    pool.release('r1')
    pool.route('r3')
    return pool.log
  }

  it('given that history, the recorded direct is not counted and the release refunds a', () => {
    const log = history()
    expect(chosen(log)).toEqual(['r1→a', 'r2→b', 'r3→a'])
    const { recorded } = backtest(log, { kind: 'least-count' })
    expect(member(recorded, 'a')).toMatchObject({ count: 1, offered: 2, released: 1, held: 1 })
    expect(member(recorded, 'b')).toMatchObject({ count: 1, offered: 1, direct: 1, held: 2 })
    expect(recorded).toMatchObject({ directs: 1, releases: 1 })
  })

  it('when directs count toward load, least-count sends r2 to a and the release refunds a', () => {
    // least-count, directs counted: r1→a (a 1); d1 → b counted (b 1); r2: 1 vs 1, tie → a (a 2);
    // release r1 → a 1; r3: 1 vs 1, tie → a (a 2). b holds d1, a holds r2 and r3.
    const result = backtest(history(), { kind: 'least-count', load: { countDirectReferrals: true } })
    expect(replayed(result.candidate.decisions)).toEqual(['r1→a', 'r2→a', 'r3→a'])
    expect(member(result.candidate, 'a')).toMatchObject({ count: 2, offered: 3, released: 1, held: 2 })
    expect(member(result.candidate, 'b')).toMatchObject({ count: 1, offered: 0, direct: 1, held: 1 })
    // Every charge (r2, d1, r3; r1 refunded) split 1/2 : 1/2: 1.5 each.
    expect(member(result.candidate, 'a')).toMatchObject({ fairShare: 1.5, lag: -0.5 })
    expect(member(result.candidate, 'b')).toMatchObject({ fairShare: 1.5, lag: 0.5 })
    expect(result.differingDecisions).toBe(1)
  })

  it('ours with directs counted: the direct charges b, so r2 goes to a', () => {
    // Engine, directs counted: r1→a (V 1); d1 charges b as a service (p_b 2000, V 2); r2: a's
    // start 2 and b's 2 are both due, F equal (4), S equal → practiceId: a. Release r1: a refunded.
    // r3: a's start 2 (F 4), b's 2 (F 4) → a.
    const routing: RoutingPolicy = {
      ...routingPolicyV2,
      options: { ...routingPolicyV2.options, countDirectReferrals: true },
    }
    const result = backtest(history(), { kind: 'engine', policy: routing })
    expect(replayed(result.candidate.decisions)).toEqual(['r1→a', 'r2→a', 'r3→a'])
    expect(member(result.candidate, 'b')).toMatchObject({ count: 1, direct: 1 })
  })

  it('a direct referral after a decline the candidate never saw is skipped, and so is its release', () => {
    // Stored (a 2.0, b 1.0 FTE): r1→a, r2→b, r3→a, r4→a as in the first history; a declines r4,
    // which then goes direct to c (not a member: the patient chose it), and is later released.
    const pool = new Pool()
    pool.sync('a', 2000)
    pool.sync('b', 1000)
    for (const r of ['r1', 'r2', 'r3', 'r4']) pool.route(r)
    pool.decline('r4')
    pool.direct('r4', 'c')
    pool.release('r4')
    expect(chosen(pool.log)).toEqual(['r1→a', 'r2→b', 'r3→a', 'r4→a'])
    const { recorded, candidate } = backtest(pool.log, { kind: 'round-robin' })
    expect(recorded).toMatchObject({ declines: 1, directs: 1, releases: 1 })
    expect(recorded.skipped).toEqual({ offers: 0, declines: 0, directs: 0, releases: 0 })
    // Round-robin sends r4 to b, which keeps it: no decline by a, no direct to c; the release
    // (r4 left the pool) releases b's r4 and refunds it.
    expect(replayed(candidate.decisions)).toEqual(['r1→a', 'r2→b', 'r3→a', 'r4→b'])
    expect(candidate.skipped).toEqual({ offers: 0, declines: 1, directs: 1, releases: 0 })
    expect(member(candidate, 'b')).toMatchObject({ offered: 2, released: 1, held: 1, count: 1 })
  })
})

describe('backtest replays membership changes in stored order', () => {
  it('a paused member is not offered referrals; it is again after resuming', () => {
    const pool = new Pool()
    pool.sync('a', 1000)
    pool.sync('b', 1000)
    pool.route('r1')
    pool.sync('a', 1000, { paused: true })
    pool.route('r2')
    pool.route('r3')
    pool.sync('a', 1000)
    pool.route('r4')
    const result = backtest(pool.log, { kind: 'round-robin' })
    // r1→a; a paused: r2→b, r3→b (the only candidate); a resumes: r4 wraps past b → a.
    expect(replayed(result.candidate.decisions)).toEqual(['r1→a', 'r2→b', 'r3→b', 'r4→a'])
    // Shares: r1 and r4 split 1/2 : 1/2, r2 and r3 b only: a 1 vs 2, b 3 vs 2. The largest |lag|
    // after any decision: after r4, a's 1 − 2.
    expect(member(result.candidate, 'a')).toMatchObject({ count: 2, fairShare: 1, lag: -1 })
    expect(member(result.candidate, 'b')).toMatchObject({ count: 2, fairShare: 3, lag: 1 })
    expect(result.candidate.maxAbsLag).toBe(1)
    expect(result.candidate.maxConsecutive).toBe(2)
  })

  it('a referral that fits no active member stays unrouted in every replay', () => {
    const pool = new Pool()
    pool.sync('a', 1000, { networks: ['n1'] })
    pool.sync('b', 1000, { networks: ['n2'] })
    expect(pool.route('r1', 'n3')).toBeNull()
    pool.route('r2', 'n2') // → b, the only member in n2
    const result = backtest(pool.log, { kind: 'least-count' })
    expect(replayed(result.candidate.decisions)).toEqual(['r1→none', 'r2→b'])
    expect(result.candidate).toMatchObject({ routed: 1, unrouted: 1 })
    // r2 split over its only candidate, b.
    expect(member(result.candidate, 'b')).toMatchObject({ count: 1, fairShare: 1, lag: 0 })
  })
})

describe('backtest under the same policy (property)', () => {
  const ids = ['a', 'b', 'c', 'd']
  const referrals = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']
  const step = fc.oneof(
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('sync' as const),
        id: fc.constantFrom(...ids),
        fte: fc.constantFrom(500, 1000, 2000),
        eligible: fc.constantFrom(true, true, true, false),
        paused: fc.boolean(),
        networks: fc.subarray(['n1', 'n2']),
      }),
    },
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('route' as const),
        referral: fc.constantFrom(...referrals),
        network: fc.constantFrom(null, 'n1', 'n2'),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('decline' as const),
        referral: fc.constantFrom(...referrals),
        expiry: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('direct' as const),
        referral: fc.constantFrom(...referrals),
        id: fc.constantFrom(...ids, 'outsider'),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('release' as const),
        referral: fc.constantFrom(...referrals),
      }),
    },
  )
  const policy = fc.record({
    countDirectReferrals: fc.boolean(),
    onDecline: fc.constantFrom('keep' as const, 'refund' as const),
  })

  it('reproduces exactly the stored events and decisions, whatever the history', () => {
    fc.assert(
      fc.property(policy, fc.array(step, { maxLength: 60 }), (options, steps) => {
        const routing: RoutingPolicy = {
          ...routingPolicyV2,
          options: { ...routingPolicyV2.options, ...options },
        }
        const pool = new Pool(makePoolDecider(routing), true)
        for (const s of steps) {
          switch (s.kind) {
            case 'sync':
              pool.sync(s.id, s.fte, { eligible: s.eligible, paused: s.paused, networks: s.networks })
              break
            case 'route':
              pool.route(s.referral, s.network)
              break
            case 'decline':
              if (poolEngine(pool.state).referral(s.referral)?.state === 'assigned')
                pool.decline(s.referral, s.expiry ? 'expiry' : 'decline')
              break
            case 'direct':
              pool.direct(s.referral, s.id)
              break
            case 'release':
              pool.release(s.referral)
              break
          }
        }
        expect(replayUnder(pool.log, routing)).toEqual(pool.log)
        const result = backtest(pool.log, { kind: 'engine', policy: routing })
        expect(replayed(result.candidate.decisions)).toEqual(chosen(pool.log))
        expect(result.candidate).toEqual({ ...result.recorded, policy: 'ours' })
        expect(result.differingDecisions).toBe(0)
      }),
      { numRuns: 300 },
    )
  })
})
