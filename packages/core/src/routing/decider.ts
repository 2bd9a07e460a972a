import { left, right } from 'fp-ts/lib/Either.js'
import type { Decider } from '../shared/decider.js'
import { absurd, domainError } from '../shared/errors.js'
import type { ReferralId } from '../shared/ids.js'
import {
  type PoolCommand,
  PoolCommandBody,
  type PoolEvent,
  type RouteRequest,
  type RoutingPolicy,
  type SyncPoolMemberData,
} from './codecs.js'
import { PoolEngine, type Ranking } from './engine.js'

/** The engine's routing policy: weighted least-count by FTE with virtual-time placement. */
export const routingPolicyV1: RoutingPolicy = {
  name: 'weighted-virtual-time',
  version: 1,
  options: { countDirectReferrals: false, onDecline: 'refund', recordCandidates: 10 },
}

interface History {
  readonly event: PoolEvent
  readonly prev: History | null
}

/** The engine object currently reflects the state whose history is `at`. */
interface EngineCell {
  readonly engine: PoolEngine
  at: History | null
}

/**
 * A pool's state. It is a value: `evolve` never changes a state it is given. Internally the latest
 * state of a fold shares one mutable engine (so a decision costs O(log n), not a copy of the pool);
 * deciding on or evolving an older state rebuilds its engine from its own history.
 */
export interface PoolState {
  readonly history: History | null
  readonly length: number
  readonly cell: EngineCell
}

const rebuild = (history: History | null): PoolEngine => {
  const events: PoolEvent[] = []
  for (let h = history; h !== null; h = h.prev) events.push(h.event)
  const engine = new PoolEngine()
  for (let i = events.length - 1; i >= 0; i--) engine.apply(events[i] as PoolEvent)
  return engine
}

/** The engine for a state (shared when the state is the latest of its fold, rebuilt otherwise). */
export const poolEngine = (state: PoolState): PoolEngine =>
  state.cell.at === state.history ? state.cell.engine : rebuild(state.history)

export const initialPoolState = (): PoolState => ({
  history: null,
  length: 0,
  cell: { engine: new PoolEngine(), at: null },
})

export const evolvePool = (state: PoolState, event: PoolEvent): PoolState => {
  const node: History = { event, prev: state.history }
  if (state.cell.at === state.history) {
    state.cell.engine.apply(event)
    state.cell.at = node
    return { history: node, length: state.length + 1, cell: state.cell }
  }
  const engine = rebuild(state.history)
  engine.apply(event)
  return { history: node, length: state.length + 1, cell: { engine, at: node } }
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i])

const uniqueSorted = <T extends string>(xs: readonly T[]): T[] => [...new Set(xs)].sort()

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
  const req: RouteRequest = {
    insuranceNetworkId: request.insuranceNetworkId,
    excludedPracticeIds: uniqueSorted(request.excludedPracticeIds),
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
          candidateCount: ranking.candidateCount,
          candidates: ranking.ranked,
          exclusions: ranking.exclusions,
          policy,
        },
      }
}

/**
 * The pool decider for a policy. Commands are serialized per pool by the application layer
 * (append with the expected stream version, retry on conflict), so decisions see every earlier one.
 */
export const makePoolDecider = (policy: RoutingPolicy): Decider<PoolCommand, PoolEvent, PoolState> => ({
  initialState: initialPoolState(),
  evolve: evolvePool,
  decide: (command, state) => {
    if (!PoolCommandBody.is({ type: command.type, data: command.data })) {
      return left(domainError('routing.invalid_command', 'pool command does not match its schema'))
    }
    const engine = poolEngine(state)
    switch (command.type) {
      case 'SyncPoolMember':
        return right(syncMember(command.data, engine))
      case 'RouteReferral': {
        const { referralId, insuranceNetworkId, excludedPracticeIds } = command.data
        const entry = engine.referral(referralId)
        if (entry !== undefined && (entry.state === 'assigned' || entry.state === 'direct')) {
          return left(
            domainError(
              'routing.referral_already_assigned',
              'the referral is held by a practice of this pool; record its decline or release first',
            ),
          )
        }
        const request = { insuranceNetworkId, excludedPracticeIds }
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

/** The pool decider with the default policy (`routingPolicyV1`). */
export const poolDecider = makePoolDecider(routingPolicyV1)
