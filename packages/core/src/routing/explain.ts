import type { PracticeId, ReferralId } from '../shared/ids.js'
import type {
  Exclusion,
  PoolEvent,
  RankedCandidate,
  ReferralRoutedEvent,
  RoutingFoundNoCandidateEvent,
  RoutingPolicy,
} from './codecs.js'
import {
  evolvePool,
  initialPoolState,
  type PoolState,
  poolEngine,
  rankRequest,
  routingEvent,
} from './decider.js'
import { recordedLag } from './engine.js'
import { compareFractions, fractionString } from './rational.js'

type DecisionEvent = ReferralRoutedEvent | RoutingFoundNoCandidateEvent

const isDecision = (e: PoolEvent): e is DecisionEvent =>
  e.type === 'ReferralRouted' || e.type === 'RoutingFoundNoCandidate'

/**
 * The candidates of a decision as an explanation shows them: the recorded integers formatted as
 * exact fractions (virtual start p/w, finish (p+W)/w, lag (V·w − p)/W, in slot units).
 */
export const explainCandidates = (e: ReferralRoutedEvent): RankedCandidate[] =>
  e.data.candidates.map((c) => {
    const p = BigInt(c.startUnits)
    const w = BigInt(c.fteMilli)
    const lag = recordedLag(c, e.data.virtualTime, e.data.totalWeight)
    return {
      practiceId: c.practiceId,
      count: c.count,
      fteMilli: c.fteMilli,
      eligible: c.eligible,
      virtualStart: fractionString(p, w),
      virtualFinish: fractionString(p + BigInt(e.data.totalWeight), w),
      lag: fractionString(lag.num, lag.den),
    }
  })

/** The virtual time of a decision as an exact fraction string ("0", "7/2"). */
export const virtualTimeString = (e: ReferralRoutedEvent): string =>
  fractionString(BigInt(e.data.virtualTime.num), BigInt(e.data.virtualTime.den))

const parseFraction = (s: string): readonly [bigint, bigint] => {
  const [n, d] = s.split('/')
  return [BigInt(n ?? '0'), BigInt(d ?? '1')]
}

const cmp = (a: string, b: string): number => {
  const [an, ad] = parseFraction(a)
  const [bn, bd] = parseFraction(b)
  return compareFractions(an, ad, bn, bd)
}

/** Which rule separated the chosen candidate from the runner-up. */
export type DecidedBy =
  | 'only candidate'
  | 'eligibility'
  | 'smallest virtual finish'
  | 'smallest virtual start'
  | 'practiceId'
  | 'no candidate'

export const decidedBy = (ranked: readonly RankedCandidate[]): DecidedBy => {
  const [a, b] = ranked
  if (a === undefined) return 'no candidate'
  if (b === undefined) return 'only candidate'
  if (a.eligible !== b.eligible) return 'eligibility'
  const [first, second] = a.eligible
    ? (['virtualFinish', 'virtualStart'] as const)
    : (['virtualStart', 'virtualFinish'] as const)
  if (cmp(a[first], b[first]) !== 0)
    return first === 'virtualFinish' ? 'smallest virtual finish' : 'smallest virtual start'
  if (cmp(a[second], b[second]) !== 0)
    return second === 'virtualFinish' ? 'smallest virtual finish' : 'smallest virtual start'
  return 'practiceId'
}

export interface RoutingExplanation {
  readonly position: number
  readonly outcome: 'routed' | 'no_candidate'
  readonly chosenPracticeId: PracticeId | null
  readonly virtualTime: string | null
  readonly candidateCount: number
  readonly candidates: readonly RankedCandidate[]
  readonly exclusions: readonly Exclusion[]
  readonly policy: RoutingPolicy
  readonly decidedBy: DecidedBy
  /** Does replaying the log up to this decision choose the same? */
  readonly verified: boolean
  readonly lines: readonly string[]
}

const ordinalSuffix = (n: number): string => {
  const tens = n % 100
  if (tens >= 11 && tens <= 13) return 'th'
  return ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'
}

/** A lag such as `8/23` in words: behind (owed) or ahead of the FTE share, to two decimals. */
const lagWords = (lag: string): string => {
  const [num, den] = lag.split('/')
  const value = Number(num) / Number(den ?? 1)
  if (!Number.isFinite(value) || value === 0) return 'exactly at its FTE share'
  const amount = Math.abs(value).toFixed(2)
  return value > 0
    ? `behind its FTE share by ${amount} referral(s)`
    : `ahead of its FTE share by ${amount} referral(s)`
}

const describeDecision = (position: number, e: DecisionEvent, verified: boolean): RoutingExplanation => {
  const { policy, exclusions } = e.data
  const candidates = e.type === 'ReferralRouted' ? explainCandidates(e) : []
  const virtualTime = e.type === 'ReferralRouted' ? virtualTimeString(e) : null
  const rule = decidedBy(candidates)
  const lines: string[] = []
  const policyText = `${policy.name} v${policy.version} (onDecline=${policy.options.onDecline}, countDirectReferrals=${policy.options.countDirectReferrals})`
  if (e.type === 'ReferralRouted') {
    lines.push(
      `pool decision #${position} (the pool's ${position}${ordinalSuffix(position)} routing decision): routed to ${e.data.chosenPracticeId} among ${e.data.candidateCount} candidate(s); policy ${policyText}`,
    )
    lines.push(
      `rule: least load relative to FTE — the eligible member whose next referral falls due first (earliest virtual finish); decided by ${rule}`,
    )
    lines.push(
      `numbers: lag = referrals a member is owed against its FTE share (positive: behind, negative: ahead); virtual start/finish = when its current/next referral falls due, in the pool's FTE-weighted referral slots; virtual time ${virtualTime} = the slots elapsed`,
    )
    for (const [i, c] of candidates.entries()) {
      lines.push(
        `${i === 0 ? 'chosen ' : `#${i + 1}     `} ${c.practiceId}: ${c.count} referral(s) held, FTE ${c.fteMilli / 1000}, ${c.eligible ? 'eligible now' : 'not yet eligible (its next slot has not come)'}, ${lagWords(c.lag)} (exact: virtual start ${c.virtualStart}, finish ${c.virtualFinish}, lag ${c.lag})`,
      )
    }
  } else {
    lines.push(
      `pool decision #${position} (the pool's ${position}${ordinalSuffix(position)} routing decision): no candidate; policy ${policyText}`,
    )
  }
  for (const x of exclusions) lines.push(`excluded ${x.practiceId}: ${x.reason}`)
  if (!verified) lines.push('WARNING: replaying the log does not re-derive this decision')
  return {
    position,
    outcome: e.type === 'ReferralRouted' ? 'routed' : 'no_candidate',
    chosenPracticeId: e.type === 'ReferralRouted' ? e.data.chosenPracticeId : null,
    virtualTime,
    candidateCount: e.type === 'ReferralRouted' ? e.data.candidateCount : 0,
    candidates,
    exclusions,
    policy,
    decidedBy: rule,
    verified,
    lines,
  }
}

export interface RoutingMismatch {
  readonly position: number
  readonly referralId: ReferralId
  readonly recorded: PracticeId | null
  readonly rederived: PracticeId | null
  /** `target`: another practice (or none); `record`: same target, different recorded inputs. */
  readonly kind: 'target' | 'record'
}

export interface RoutingVerification {
  readonly ok: boolean
  readonly decisions: number
  readonly mismatches: readonly RoutingMismatch[]
}

const chosenOf = (e: PoolEvent): PracticeId | null =>
  e.type === 'ReferralRouted' ? e.data.chosenPracticeId : null

/** JSON with the keys of every object sorted: stores may give the keys back in another order. */
const canonical = (x: unknown): string => {
  if (Array.isArray(x)) return `[${x.map(canonical).join(',')}]`
  if (typeof x === 'object' && x !== null) {
    const o = x as Record<string, unknown>
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(x)
}

const recordOf = (e: PoolEvent): string =>
  isDecision(e)
    ? canonical({
        ...e.data,
        decisionId: '',
        request: { ...e.data.request, excludedPracticeIds: [...e.data.request.excludedPracticeIds].sort() },
      })
    : ''

const checkDecision = (state: PoolState, position: number, e: DecisionEvent): RoutingMismatch | null => {
  const ranking = rankRequest(poolEngine(state), e.data.request, e.data.policy)
  const rederived = routingEvent(e.data.decisionId, e.data.referralId, e.data.request, ranking, e.data.policy)
  const base = {
    position,
    referralId: e.data.referralId,
    recorded: chosenOf(e),
    rederived: chosenOf(rederived),
  }
  if (base.recorded !== base.rederived || rederived.type !== e.type) return { ...base, kind: 'target' }
  return recordOf(rederived) === recordOf(e) ? null : { ...base, kind: 'record' }
}

/**
 * Replays a pool's log and re-derives every routing decision from the events before it (with the
 * policy recorded in the decision). Positions are 0-based indexes into `poolEvents`.
 */
export const verifyRouting = (poolEvents: readonly PoolEvent[]): RoutingVerification => {
  let state = initialPoolState()
  let decisions = 0
  const mismatches: RoutingMismatch[] = []
  for (const [position, e] of poolEvents.entries()) {
    if (isDecision(e)) {
      decisions++
      const mismatch = checkDecision(state, position, e)
      if (mismatch !== null) mismatches.push(mismatch)
    }
    state = evolvePool(state, e)
  }
  return { ok: mismatches.length === 0, decisions, mismatches }
}

export interface ReferralRoutingExplanation {
  readonly referralId: ReferralId
  /** Every routing decision taken for the referral (re-routes after declines included), oldest first. */
  readonly decisions: readonly RoutingExplanation[]
  readonly lines: readonly string[]
}

/** Why the referral went where it went: candidates, their loads, exclusions and the deciding rule. */
export const explainRouting = (
  poolEvents: readonly PoolEvent[],
  referralId: ReferralId,
): ReferralRoutingExplanation => {
  let state = initialPoolState()
  const decisions: RoutingExplanation[] = []
  for (const [position, e] of poolEvents.entries()) {
    if (isDecision(e) && e.data.referralId === referralId) {
      decisions.push(describeDecision(position, e, checkDecision(state, position, e) === null))
    }
    state = evolvePool(state, e)
  }
  const lines =
    decisions.length === 0
      ? [`referral ${referralId} was never routed in this pool`]
      : decisions.flatMap((d) => d.lines)
  return { referralId, decisions, lines }
}
