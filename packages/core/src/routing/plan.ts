import * as E from 'fp-ts/lib/Either.js'
import type { ReferralCommand, ReferralEvent, ReferralState } from '../referral/index.js'
import type { CommandMeta, Decider } from '../shared/decider.js'
import type { DomainError } from '../shared/errors.js'
import type { PracticeId, ReferralId } from '../shared/ids.js'
import type { PoolCommand, PoolCommandBody, PoolEvent, SyncPoolMemberData } from './codecs.js'
import { type PoolState, poolEngine } from './decider.js'

/** What routing does for one pooled referral, decided on the pool and referral as they are now. */
export type RoutingOutcome =
  | { readonly kind: 'not_needed' }
  | { readonly kind: 'delivered'; readonly practiceId: PracticeId; readonly decisionId: string }
  /**
   * The pool already chose this practice, but the referral never received it (a store that cannot
   * write two streams atomically, and a process that died between the two appends). The caller
   * delivers to the recorded practice under the recorded decision, which it looks up in the
   * stored pool events (the pool state keeps no history).
   */
  | { readonly kind: 'repair'; readonly practiceId: PracticeId }
  | { readonly kind: 'no_candidate' }
  | { readonly kind: 'returned' }

export interface RoutingPlanInput {
  readonly referralId: ReferralId
  /** The referral as it is after the command that triggered routing (a pooled, existing referral). */
  readonly referral: ReferralState
  /** Its events, oldest first (to tell an expiry from a decline). */
  readonly referralEvents: readonly ReferralEvent[]
  readonly pool: PoolState
  /** What each practice of the specialty looks like to this pool now (from the directory). */
  readonly memberSyncs: readonly SyncPoolMemberData[]
  readonly poolDecider: Decider<PoolCommand, PoolEvent, PoolState>
  readonly referralDecider: Decider<ReferralCommand, ReferralEvent, ReferralState>
  /** The router's own command metadata (system actor, fresh command id, `now`). */
  readonly meta: CommandMeta
}

export interface RoutingPlan {
  readonly outcome: RoutingOutcome
  /** Events for the pool stream, in order (member syncs, refunds, releases, the decision). */
  readonly poolEvents: readonly PoolEvent[]
  /** The pool after `poolEvents`. */
  readonly pool: PoolState
  /**
   * The referral command routing issues (deliver, return, mark unassigned), or null. For a
   * `repair` outcome the caller completes its `routingDecisionId`.
   */
  readonly referralCommand: ReferralCommand | null
  /** Its events, decided on `referral` (empty for `repair`: the caller decides once it has the id). */
  readonly referralEvents: readonly ReferralEvent[]
}

/**
 * One routing step, pure: brings the pool's members up to date, gives back the slot of a practice
 * that declined (or let the window expire), lets go of a referral the pool holds for nobody, and
 * routes the referral if it waits for a specialist. The caller writes `poolEvents` and
 * `referralEvents` at the versions it read (together where the store can).
 */
export const planRouting = (input: RoutingPlanInput): E.Either<DomainError, RoutingPlan> => {
  const { referralId, referral: r, meta } = input
  let pool = input.pool
  const poolEvents: PoolEvent[] = []
  const run = (body: PoolCommandBody): E.Either<DomainError, readonly PoolEvent[]> => {
    const decided = input.poolDecider.decide({ ...body, meta } as PoolCommand, pool)
    if (E.isRight(decided)) {
      pool = decided.right.reduce(input.poolDecider.evolve, pool)
      poolEvents.push(...decided.right)
    }
    return decided
  }
  const plan = (
    outcome: RoutingOutcome,
    referralCommand: ReferralCommand | null,
  ): E.Either<DomainError, RoutingPlan> => {
    if (referralCommand === null || outcome.kind === 'repair') {
      return E.right({ outcome, poolEvents, pool, referralCommand, referralEvents: [] })
    }
    const decided = input.referralDecider.decide(referralCommand, r)
    return E.isLeft(decided)
      ? decided
      : E.right({ outcome, poolEvents, pool, referralCommand, referralEvents: decided.right })
  }
  if (!r.exists || r.route !== 'pooled') return plan({ kind: 'not_needed' }, null)

  for (const data of input.memberSyncs) {
    const synced = run({ type: 'SyncPoolMember', data })
    if (E.isLeft(synced)) return synced
  }
  const entry = poolEngine(pool).referral(referralId)
  // A practice that declined or let the window expire gives its slot back (policy `onDecline`).
  if (entry?.state === 'assigned' && r.declinedBy.includes(entry.practiceId as PracticeId)) {
    const expired = input.referralEvents.some(
      (e) => e.type === 'ReferralExpired' && e.data.practiceId === entry.practiceId,
    )
    const declined = run({
      type: 'RecordDecline',
      data: { referralId, practiceId: entry.practiceId, kind: expired ? 'expiry' : 'decline' },
    } as PoolCommandBody)
    if (E.isLeft(declined)) return declined
  }
  // Re-filed here after a category change and then declined: the pool lets go of it.
  if (entry?.state === 'direct' && r.declinedBy.includes(entry.practiceId as PracticeId)) {
    const released = run({ type: 'ReleaseReferral', data: { referralId } })
    if (E.isLeft(released)) return released
  }
  // A decision the referral never received (non-atomic store: the process died between the two
  // appends) while the referral moved on — cancelled, say: the pool lets go of it.
  const held = poolEngine(pool).referral(referralId)
  if (
    held?.state === 'assigned' &&
    r.status !== 'unassigned' &&
    r.recipientPracticeId !== held.practiceId &&
    !r.declinedBy.includes(held.practiceId as PracticeId)
  ) {
    const released = run({ type: 'ReleaseReferral', data: { referralId } })
    if (E.isLeft(released)) return released
  }
  if (r.status !== 'unassigned') return plan({ kind: 'not_needed' }, null)

  const after = poolEngine(pool).referral(referralId)
  if (after?.state === 'assigned' && !r.declinedBy.includes(after.practiceId as PracticeId)) {
    const practiceId = after.practiceId as PracticeId
    return plan({ kind: 'repair', practiceId }, deliver(practiceId, 'repaired', meta))
  }
  const routed = run({
    type: 'RouteReferral',
    data: { referralId, insuranceNetworkId: r.insuranceNetworkId, excludedPracticeIds: r.declinedBy },
  } as PoolCommandBody)
  if (E.isLeft(routed)) return routed
  const decision = routed.right[0]
  if (decision?.type === 'ReferralRouted') {
    const practiceId = decision.data.chosenPracticeId as PracticeId
    return plan(
      { kind: 'delivered', practiceId, decisionId: decision.data.decisionId },
      deliver(practiceId, decision.data.decisionId, meta),
    )
  }
  const exclusions = decision?.type === 'RoutingFoundNoCandidate' ? decision.data.exclusions : []
  // Exhausted: somebody declined and nobody is merely paused or filtered out by insurance, so no
  // one in the pool can ever take it; the sender gets it back to redirect.
  const exhausted =
    exclusions.some((x) => x.reason === 'declined') &&
    exclusions.every((x) => x.reason === 'declined' || x.reason === 'not_eligible')
  if (exhausted) {
    return plan({ kind: 'returned' }, { type: 'ReturnReferral', data: { reason: 'pool_exhausted' }, meta })
  }
  if (r.intake === 'no_candidate') {
    // Still nobody for a referral already waiting: keep member changes, not another identical decision.
    // (`RoutingFoundNoCandidate` only records the policy version, which did not change, so the
    // evolved pool state stays the state of the remaining events.)
    poolEvents.pop()
    return plan({ kind: 'no_candidate' }, null)
  }
  return plan(
    { kind: 'no_candidate' },
    { type: 'MarkReferralUnassigned', data: { reason: 'no_candidate' }, meta },
  )
}

/** The referral command that hands a routed referral to the chosen practice. */
export const deliver = (practiceId: PracticeId, decisionId: string, meta: CommandMeta): ReferralCommand => ({
  type: 'DeliverReferral',
  data: { recipientPracticeId: practiceId, route: 'pooled', routingDecisionId: decisionId },
  meta,
})
