import { left, right } from 'fp-ts/lib/Either.js'
import type { Decider } from '../shared/decider.js'
import { absurd, domainError } from '../shared/errors.js'
import { InsuranceNetworkId, PracticeId, ReferralId } from '../shared/ids.js'
import {
  type PoolCommand,
  PoolCommandBody,
  type PoolEvent,
  type RouteRequest,
  type RoutingPolicy,
  type SyncPoolMemberData,
} from './codecs.js'
import { PoolEngine, type Ranking } from './engine.js'

/** Routing policy v1: the engine before issue 12, kept so that decisions of old streams re-derive. */
export const routingPolicyV1: RoutingPolicy = {
  name: 'weighted-virtual-time',
  version: 1,
  options: { countDirectReferrals: false, onDecline: 'refund', recordCandidates: 10 },
}

/**
 * Routing policy v2 (the default since issue 12): weighted least-count by FTE with virtual-time
 * placement, lag-preserving pauses and exact refunds. Same options as v1.
 */
export const routingPolicyV2: RoutingPolicy = { ...routingPolicyV1, version: 2 }

/** The policy new decisions are taken under. */
export const currentRoutingPolicy: RoutingPolicy = routingPolicyV2

/**
 * A pool's state: the pool's engine and how many events it has seen. No event history is kept.
 *
 * The latest state of a fold owns its engine, which `evolve` advances in place (a decision costs
 * O(log n), not a copy of the pool). So once a state has been evolved, it is *superseded*: deciding
 * on it or evolving it again throws an Error (a bug in the caller, not bad input). A caller that
 * wants to decide speculatively on a state and maybe keep using it (say, to retry after a lost
 * race) forks it first with `forkPoolState`, an O(members) copy. `initialPoolState()` (and the
 * decider's `initialState`) is the empty pool and can be evolved any number of times.
 */
export interface PoolState {
  /** null: the empty pool (no event yet). */
  readonly engine: PoolEngine | null
  /** Events folded into this state. */
  readonly length: number
}

const EMPTY_STATE: PoolState = Object.freeze({ engine: null, length: 0 })

const superseded = (state: PoolState): Error =>
  new Error(
    `pool state at event ${state.length} is superseded (its engine has moved on to event ${state.engine?.applied}): ` +
      'fork it with forkPoolState before deciding on it or evolving it more than once',
  )

/** The engine for a state. Throws if the state is superseded (see `PoolState`). */
export const poolEngine = (state: PoolState): PoolEngine => {
  const engine = state.engine
  if (engine === null) return new PoolEngine()
  if (engine.applied !== state.length) throw superseded(state)
  return engine
}

export const initialPoolState = (): PoolState => EMPTY_STATE

/**
 * An independent copy of a (current) state: O(members) plus at most 1,024 referral entries (the
 * referral book is shared copy-on-write; folding its layers, a copy of the book, happens at most
 * once per 1,024 writes since the last fold).
 */
export const forkPoolState = (state: PoolState): PoolState => {
  if (state.engine === null) return EMPTY_STATE
  return { engine: poolEngine(state).clone(), length: state.length }
}

export const evolvePool = (state: PoolState, event: PoolEvent): PoolState => {
  const engine = state.engine === null ? new PoolEngine() : poolEngine(state)
  engine.apply(event)
  return { engine, length: engine.applied }
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i])

const uniqueSorted = <T extends string>(xs: readonly T[]): T[] => [...new Set(xs)].sort()
const NONE: readonly never[] = Object.freeze([])
/** The recorded request of a decision without filters, shared by all such events (immutable). */
const PLAIN_REQUEST: RouteRequest = Object.freeze({ insuranceNetworkId: null, excludedPracticeIds: NONE })

const syncMember = (data: SyncPoolMemberData, engine: PoolEngine): PoolEvent[] => {
  const { practiceId, eligible, fteMilli } = data
  const paused = data.paused === true
  const insuranceNetworks = uniqueSorted(data.insuranceNetworks)
  const m = engine.member(practiceId)
  if (m === undefined || m.status === 'left') {
    if (!eligible) return []
    const joined: PoolEvent = { type: 'MemberJoined', data: { practiceId, fteMilli, insuranceNetworks } }
    return paused ? [joined, { type: 'MemberPaused', data: { practiceId } }] : [joined]
  }
  if (!eligible) return [{ type: 'MemberLeft', data: { practiceId } }]
  const events: PoolEvent[] = []
  if (m.fteMilli !== fteMilli) {
    events.push({
      type: 'MemberFteChanged',
      data: { practiceId, fromFteMilli: m.fteMilli as typeof fteMilli, toFteMilli: fteMilli },
    })
  }
  if (!sameSet(m.insuranceNetworks, insuranceNetworks)) {
    events.push({ type: 'MemberNetworksChanged', data: { practiceId, insuranceNetworks } })
  }
  if (m.status === 'active' && paused) events.push({ type: 'MemberPaused', data: { practiceId } })
  if (m.status === 'paused' && !paused) events.push({ type: 'MemberResumed', data: { practiceId } })
  return events
}

/** Ranks a routing request against a state: the pure core of RouteReferral, also used by verify. */
export const rankRequest = (engine: PoolEngine, request: RouteRequest, policy: RoutingPolicy): Ranking =>
  engine.rank(request, policy.options.recordCandidates)

export const routingEvent = (
  decisionId: string,
  referralId: ReferralId,
  request: RouteRequest,
  ranking: Ranking,
  policy: RoutingPolicy,
): PoolEvent => {
  const req: RouteRequest =
    request.insuranceNetworkId === null && request.excludedPracticeIds.length === 0
      ? PLAIN_REQUEST
      : {
          insuranceNetworkId: request.insuranceNetworkId,
          excludedPracticeIds:
            request.excludedPracticeIds.length === 0 ? NONE : uniqueSorted(request.excludedPracticeIds),
        }
  const first = ranking.ranked[0]
  return first === undefined
    ? {
        type: 'RoutingFoundNoCandidate',
        data: { decisionId, referralId, request: req, exclusions: ranking.exclusions, policy },
      }
    : {
        type: 'ReferralRouted',
        data: {
          decisionId,
          referralId,
          chosenPracticeId: first.practiceId,
          request: req,
          virtualTime: ranking.virtualTime,
          totalWeight: ranking.totalWeight,
          candidateCount: ranking.candidateCount,
          candidates: ranking.ranked,
          exclusions: ranking.exclusions,
          policy,
        },
      }
}

const isId = (x: unknown): boolean => PracticeId.is(x)

/**
 * The schema check of a RouteReferral, by hand: what `PoolCommandBody.is` checks for it (the
 * decision's hot path; the general check costs more than the decision). Tested to agree.
 */
export const isRouteReferral = (command: { readonly type: string; readonly data: unknown }): boolean => {
  if (command.type !== 'RouteReferral') return false
  const d = command.data as Record<string, unknown> | null
  if (typeof d !== 'object' || d === null) return false
  const { referralId, insuranceNetworkId, excludedPracticeIds, direct } = d
  if (!ReferralId.is(referralId)) return false
  if (insuranceNetworkId !== null && !InsuranceNetworkId.is(insuranceNetworkId)) return false
  if (!Array.isArray(excludedPracticeIds)) return false
  for (const x of excludedPracticeIds) if (!isId(x)) return false
  return direct === undefined || direct === false
}

/**
 * The pool decider for a policy. Commands are serialized per pool by the application layer
 * (append with the expected stream version, retry on conflict), so decisions see every earlier one.
 */
export const makePoolDecider = (policy: RoutingPolicy): Decider<PoolCommand, PoolEvent, PoolState> => ({
  initialState: initialPoolState(),
  evolve: evolvePool,
  decide: (command, state) => {
    if (!isRouteReferral(command) && !PoolCommandBody.is({ type: command.type, data: command.data })) {
      return left(domainError('routing.invalid_command', 'pool command does not match its schema'))
    }
    const engine = poolEngine(state)
    switch (command.type) {
      case 'SyncPoolMember':
        return right(syncMember(command.data, engine))
      case 'RouteReferral': {
        const request = command.data
        const referralId = request.referralId
        if (engine.holds(referralId)) {
          return left(
            domainError(
              'routing.referral_already_assigned',
              'the referral is held by a practice of this pool; record its decline or release first',
            ),
          )
        }
        // The command's data is the request (rank and the event read its two request fields only).
        const ranking = rankRequest(engine, request, policy)
        return right([routingEvent(command.meta.commandId, referralId, request, ranking, policy)])
      }
      case 'RecordDecline': {
        const { referralId, practiceId, kind } = command.data
        const entry = engine.referral(referralId)
        if (entry?.practiceId === practiceId && entry.state === 'declined') return right([])
        if (entry?.practiceId !== practiceId || entry.state !== 'assigned') {
          return left(
            domainError('routing.not_assigned', 'the referral is not assigned to this practice in this pool'),
          )
        }
        return right([
          {
            type: 'DeclineRecorded',
            data: { referralId, practiceId, kind, refunded: policy.options.onDecline === 'refund' },
          },
        ])
      }
      case 'RecordDirectReferral': {
        const { referralId, practiceId } = command.data
        const entry = engine.referral(referralId)
        if (entry?.state === 'direct' && entry.practiceId === practiceId) return right([])
        if (entry?.state === 'assigned' || entry?.state === 'direct') {
          return left(
            domainError('routing.referral_already_assigned', 'the referral is already held by a practice'),
          )
        }
        const counted = policy.options.countDirectReferrals && engine.member(practiceId)?.status === 'active'
        return right([{ type: 'DirectReferralRecorded', data: { referralId, practiceId, counted } }])
      }
      case 'ReleaseReferral': {
        const { referralId } = command.data
        const entry = engine.referral(referralId)
        if (entry === undefined || (entry.state !== 'assigned' && entry.state !== 'direct')) return right([])
        return right([
          {
            type: 'ReferralReleased',
            data: {
              referralId,
              practiceId: entry.practiceId,
              refunded: entry.counted,
            },
          },
        ])
      }
      default:
        return absurd(command)
    }
  },
})

/** The pool decider with the current policy (`routingPolicyV2`). */
export const poolDecider = makePoolDecider(currentRoutingPolicy)
