import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { referralDecider } from '../referral/decider.js'
import { referralFixtures as f } from '../referral/fixtures.js'
import type { ReferralEvent, ReferralState } from '../referral/index.js'
import { fold } from '../shared/decider.js'
import type { PracticeId } from '../shared/ids.js'
import type { FteMilli, PoolEvent, SyncPoolMemberData } from './codecs.js'
import { type PoolState, poolDecider } from './decider.js'
import { verifyRouting } from './explain.js'
import { planRouting, type RoutingPlan } from './plan.js'

const member = (
  practiceId: PracticeId,
  opts: { eligible?: boolean; paused?: boolean } = {},
): SyncPoolMemberData => ({
  practiceId,
  eligible: opts.eligible ?? true,
  fteMilli: 1000 as FteMilli,
  insuranceNetworks: [],
  ...(opts.paused === undefined ? {} : { paused: opts.paused }),
})

/**
 * A referral's life as a sequence of steps: the referral's own events, then a routing plan on the
 * pool as the previous plans left it (its events are kept to check them with `verifyRouting`).
 */
const scenario = () => {
  let referralEvents: ReferralEvent[] = []
  let pool: PoolState = poolDecider.initialState
  const poolEvents: PoolEvent[] = []
  const state = (): ReferralState => fold(referralDecider, referralEvents)
  return {
    given(...events: ReferralEvent[]) {
      referralEvents = [...referralEvents, ...events]
      return this
    },
    /** Plans on the current state; the plan's events are applied as a store would after the append. */
    plan(members: readonly SyncPoolMemberData[]): RoutingPlan {
      const planned = planRouting({
        referralId: f.referralId,
        referral: state(),
        referralEvents,
        pool,
        memberSyncs: members,
        poolDecider,
        referralDecider,
        meta: f.meta(f.system, f.at(1)),
      })
      if (E.isLeft(planned)) throw new Error(`plan refused: ${planned.left.code}`)
      pool = planned.right.pool
      poolEvents.push(...planned.right.poolEvents)
      referralEvents = [...referralEvents, ...planned.right.referralEvents]
      return planned.right
    },
    state,
    poolEvents: () => poolEvents,
  }
}

const types = (events: readonly { readonly type: string }[]) => events.map((e) => e.type)

const declined = (practiceId: PracticeId, deliveryNo: number): ReferralEvent => ({
  type: 'ReferralDeclined',
  data: {
    referralId: f.referralId,
    practiceId,
    deliveryNo,
    route: 'pooled',
    reasonCode: 'capacity',
    phi: {},
    declinedAt: f.at(2),
  },
})
const expired = (practiceId: PracticeId, deliveryNo: number): ReferralEvent => ({
  type: 'ReferralExpired',
  data: { referralId: f.referralId, practiceId, deliveryNo, route: 'pooled', expiredAt: f.at(50) },
})

describe('planRouting', () => {
  it('a pooled send: members join, one decision, the referral is delivered to the chosen practice', () => {
    const s = scenario().given(f.sent())
    const plan = s.plan([member(f.specA), member(f.specB)])
    expect(types(plan.poolEvents)).toEqual(['MemberJoined', 'MemberJoined', 'ReferralRouted'])
    // Equal FTE, nobody served yet: the lowest id wins the tie.
    expect(plan.outcome).toMatchObject({ kind: 'delivered', practiceId: f.specA })
    expect(plan.referralCommand?.type).toBe('DeliverReferral')
    expect(types(plan.referralEvents)).toEqual(['ReferralDelivered'])
    expect(s.state()).toMatchObject({ status: 'pending', recipientPracticeId: f.specA })
  })

  it('a decline gives the slot back and the referral goes to the next practice', () => {
    const s = scenario().given(f.sent())
    s.plan([member(f.specA), member(f.specB)])
    s.given(declined(f.specA, 1))
    const plan = s.plan([member(f.specA), member(f.specB)])
    expect(types(plan.poolEvents)).toEqual(['DeclineRecorded', 'ReferralRouted'])
    expect(plan.poolEvents[0]).toMatchObject({ data: { practiceId: f.specA, kind: 'decline' } })
    expect(plan.outcome).toMatchObject({ kind: 'delivered', practiceId: f.specB })
    expect(s.state()).toMatchObject({ recipientPracticeId: f.specB })
    expect(verifyRouting(s.poolEvents()).ok).toBe(true)
  })

  it('an expired response window is recorded as an expiry, not a decline', () => {
    const s = scenario().given(f.sent())
    s.plan([member(f.specA), member(f.specB)])
    s.given(expired(f.specA, 1))
    const plan = s.plan([member(f.specA), member(f.specB)])
    expect(plan.poolEvents[0]).toMatchObject({ type: 'DeclineRecorded', data: { kind: 'expiry' } })
  })

  it('nobody can take it yet: one no-candidate decision, the referral waits; asking again adds nothing', () => {
    const s = scenario().given(f.sent())
    const first = s.plan([member(f.specA, { paused: true })])
    expect(types(first.poolEvents)).toEqual(['MemberJoined', 'MemberPaused', 'RoutingFoundNoCandidate'])
    expect(first.outcome).toEqual({ kind: 'no_candidate' })
    expect(first.referralCommand?.type).toBe('MarkReferralUnassigned')
    expect(s.state()).toMatchObject({ status: 'unassigned', intake: 'no_candidate' })
    const again = s.plan([member(f.specA, { paused: true })])
    expect(again.poolEvents).toEqual([])
    expect(again.referralCommand).toBeNull()
  })

  it('everyone who could take it declined: the sender gets it back', () => {
    const s = scenario().given(f.sent())
    s.plan([member(f.specA)])
    s.given(declined(f.specA, 1))
    const plan = s.plan([member(f.specA)])
    expect(plan.outcome).toEqual({ kind: 'returned' })
    expect(plan.referralCommand).toMatchObject({ type: 'ReturnReferral', data: { reason: 'pool_exhausted' } })
    expect(types(plan.referralEvents)).toEqual(['ReferralReturned'])
  })

  it('a decision the referral never received is repaired, not decided again', () => {
    const s = scenario().given(f.sent())
    const decided = s.plan([member(f.specA), member(f.specB)])
    // The pool stream was written, the referral was not (non-atomic store, crash in between).
    const undelivered = scenario().given(f.sent())
    const planned = planRouting({
      referralId: f.referralId,
      referral: undelivered.state(),
      referralEvents: [f.sent()],
      pool: decided.pool,
      memberSyncs: [member(f.specA), member(f.specB)],
      poolDecider,
      referralDecider,
      meta: f.meta(f.system, f.at(1)),
    })
    expect(E.isRight(planned) && planned.right.outcome).toEqual({ kind: 'repair', practiceId: f.specA })
    expect(E.isRight(planned) && planned.right.poolEvents).toEqual([])
  })

  it('a delivered referral needs nothing; a direct referral is not routed', () => {
    const pooled = scenario().given(f.sent())
    pooled.plan([member(f.specA)])
    const plan = pooled.plan([member(f.specA)])
    expect(plan.outcome).toEqual({ kind: 'not_needed' })
    expect(plan.poolEvents).toEqual([])
    const direct = scenario().given(f.sent({ kind: 'direct', practiceId: f.specA }))
    const none = direct.plan([member(f.specA)])
    expect(none).toMatchObject({ outcome: { kind: 'not_needed' }, poolEvents: [], referralEvents: [] })
  })
})
