import type { PracticeId, ReferralId } from '../shared/ids.js'
import type { PoolEvent, RouteRequest, RoutingPolicy, RoutingPolicyOptions } from './codecs.js'
import { currentRoutingPolicy, routingEvent } from './decider.js'
import { PoolEngine } from './engine.js'

/**
 * How a replay treats load, whatever the policy: does a direct referral to an active member count
 * toward its load, and is a declined or expired offer refunded (`refund`) or left charged (`keep`)?
 * The routing policy's options of the same names (`RoutingPolicyOptions`).
 */
export type LoadOptions = Pick<RoutingPolicyOptions, 'countDirectReferrals' | 'onDecline'>

/**
 * Policies a pool's history can be replayed under. `engine` is ours (weighted virtual time) under
 * `policy` (default: the policy of the history's last decision, else the current one). Every
 * policy takes `load` to override how directs and declines are counted (default: as that policy).
 */
export type BacktestPolicy = (
  | { readonly kind: 'engine'; readonly policy?: RoutingPolicy }
  | { readonly kind: 'least-count' }
  | { readonly kind: 'round-robin' }
  | { readonly kind: 'random'; readonly seed: number }
  | { readonly kind: 'smooth-wrr' }
) & { readonly load?: Partial<LoadOptions> }

export interface MemberFairness {
  readonly practiceId: PracticeId
  readonly fteMilli: number
  /** Load: routed to it, minus refunded declines/expiries/releases, plus counted direct referrals. */
  readonly count: number
  /** Routing decisions that chose it (offers, accepted or not). */
  readonly offered: number
  readonly declined: number
  readonly expired: number
  /** Direct referrals recorded for it (counted toward its load or not). */
  readonly direct: number
  /** Referrals it held that the pool released (cancelled, re-filed elsewhere). */
  readonly released: number
  /** Referrals it holds at the end of the history (routed and not declined, or direct; not released). */
  readonly held: number
  /**
   * Fluid fair share of the load: each charged referral split over the members that could have
   * taken it in proportion to FTE (a routed one over its decision's candidates, a counted direct one
   * over the active members); a refund takes the referral's split back.
   */
  readonly fairShare: number
  /** fairShare − count (positive: owed referrals). */
  readonly lag: number
}

/** Which member one stored routing decision went to in a replay (null: nobody could take it). */
export interface ReplayedDecision {
  readonly referralId: ReferralId
  readonly chosen: PracticeId | null
  /** The referral was held in this replay when the stored history offered it again: no decision. */
  readonly skipped: boolean
}

/** Stored events that had no counterpart in a replay (see `backtest`). */
export interface SkippedEvents {
  readonly offers: number
  readonly declines: number
  readonly directs: number
  readonly releases: number
}

export interface FairnessReport {
  readonly policy: string
  readonly routed: number
  readonly unrouted: number
  readonly declines: number
  readonly expiries: number
  readonly directs: number
  readonly releases: number
  readonly skipped: SkippedEvents
  readonly members: readonly MemberFairness[]
  /** Largest |fair share − count| of any member after any decision. */
  readonly maxAbsLag: number
  /** Longest run of consecutive routing decisions to one member. */
  readonly maxConsecutive: number
  /** Longest run of consecutive decisions a member got right after joining or resuming. */
  readonly maxNewcomerBurst: number
  /** Gini coefficient of count / fair share over members with fair share ≥ 1 (0 = proportional). */
  readonly gini: number
  /** One entry per stored routing decision, in stored order. */
  readonly decisions: readonly ReplayedDecision[]
}

export interface BacktestResult {
  /** Stored routing decisions (arrivals and re-offers after a decline or expiry). */
  readonly arrivals: number
  /** The history as recorded. */
  readonly recorded: FairnessReport
  /** Ours (the engine) replayed under the history's policy: equals `recorded` for an untampered log. */
  readonly baseline: FairnessReport
  /** The other policy replayed on the same history. */
  readonly candidate: FairnessReport
  /** Stored routing decisions where baseline and candidate chose differently (or one skipped). */
  readonly differingDecisions: number
}

/** mulberry32: a small seeded PRNG (uint32 outputs), so backtests are reproducible. */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

interface SimMember {
  readonly practiceId: PracticeId
  w: number
  active: boolean
  networks: ReadonlySet<string>
  count: number
  share: number
  offered: number
  declined: number
  expired: number
  direct: number
  released: number
}

/** A referral a member holds in a replay, with the fair-share split its charge added. */
interface Holding {
  readonly practiceId: PracticeId
  readonly routed: boolean
  readonly counted: boolean
  readonly split: readonly (readonly [SimMember, number])[]
}

/** A policy as a chooser: it sees every event of its replay and chooses among sorted candidates. */
interface Chooser {
  readonly observe: (e: PoolEvent) => void
  /** The chosen member, or null; `stored` is the stored decision being replayed. */
  readonly choose: (
    candidates: readonly SimMember[],
    request: RouteRequest,
    stored: StoredDecision,
  ) => { readonly chosen: PracticeId | null; readonly event?: PoolEvent }
}

type StoredDecision = Extract<PoolEvent, { type: 'ReferralRouted' | 'RoutingFoundNoCandidate' }>

const byId = (a: { practiceId: string }, b: { practiceId: string }) =>
  a.practiceId < b.practiceId ? -1 : a.practiceId > b.practiceId ? 1 : 0

const engineChooser = (policy: RoutingPolicy): Chooser => {
  const engine = new PoolEngine()
  return {
    observe: (e) => engine.apply(e),
    choose: (_candidates, request, stored) => {
      const ranking = engine.rank(request, policy.options.recordCandidates)
      const event = routingEvent(stored.data.decisionId, stored.data.referralId, request, ranking, policy)
      engine.apply(event)
      return { chosen: ranking.chosen, event }
    },
  }
}

const none = { chosen: null } as const

const leastCount = (): Chooser => ({
  observe: () => undefined,
  // count/w smallest, compared exactly as count_a·w_b < count_b·w_a.
  choose: (cs) =>
    cs.length === 0
      ? none
      : {
          chosen: cs.reduce((best, c) => (c.count * best.w < best.count * c.w ? c : best), cs[0] as SimMember)
            .practiceId,
        },
})

const roundRobin = (): Chooser => {
  let last: string | null = null
  return {
    observe: () => undefined,
    choose: (cs) => {
      if (cs.length === 0) return none
      const next = cs.find((c) => last === null || c.practiceId > last) ?? (cs[0] as SimMember)
      last = next.practiceId
      return { chosen: next.practiceId }
    },
  }
}

const weightedRandom = (seed: number): Chooser => {
  const next = mulberry32(seed)
  return {
    observe: () => undefined,
    choose: (cs) => {
      if (cs.length === 0) return none
      const total = cs.reduce((s, c) => s + c.w, 0)
      let r = next() % total
      for (const c of cs) {
        if (r < c.w) return { chosen: c.practiceId }
        r -= c.w
      }
      return { chosen: (cs[cs.length - 1] as SimMember).practiceId }
    },
  }
}

/** nginx smooth weighted round-robin: current += w for all, pick the largest, subtract the total. */
const smoothWrr = (): Chooser => {
  const current = new Map<string, number>()
  return {
    observe: (e) => {
      if (e.type === 'MemberJoined' || e.type === 'MemberResumed') current.set(e.data.practiceId, 0)
    },
    choose: (cs) => {
      if (cs.length === 0) return none
      let total = 0
      let best: SimMember | undefined
      for (const c of cs) {
        total += c.w
        current.set(c.practiceId, (current.get(c.practiceId) ?? 0) + c.w)
        if (
          best === undefined ||
          (current.get(c.practiceId) as number) > (current.get(best.practiceId) as number)
        )
          best = c
      }
      const chosen = best as SimMember
      current.set(chosen.practiceId, (current.get(chosen.practiceId) as number) - total)
      return { chosen: chosen.practiceId }
    },
  }
}

const recordedChooser = (): Chooser => ({
  observe: () => undefined,
  choose: (_cs, _request, stored) => ({
    chosen: stored.type === 'ReferralRouted' ? stored.data.chosenPracticeId : null,
  }),
})

/** The routing policy a history was decided under: its last decision's, else the current one. */
export const historyPolicy = (poolEvents: readonly PoolEvent[]): RoutingPolicy => {
  for (let i = poolEvents.length - 1; i >= 0; i--) {
    const e = poolEvents[i] as PoolEvent
    if (e.type === 'ReferralRouted' || e.type === 'RoutingFoundNoCandidate') return e.data.policy
  }
  return currentRoutingPolicy
}

const withLoad = (policy: RoutingPolicy, load: Partial<LoadOptions> | undefined): RoutingPolicy =>
  load === undefined ? policy : { ...policy, options: { ...policy.options, ...load } }

const chooserFor = (policy: BacktestPolicy, routing: RoutingPolicy): Chooser => {
  switch (policy.kind) {
    case 'engine':
      return engineChooser(routing)
    case 'least-count':
      return leastCount()
    case 'round-robin':
      return roundRobin()
    case 'random':
      return weightedRandom(policy.seed)
    case 'smooth-wrr':
      return smoothWrr()
  }
}

const policyName = (policy: BacktestPolicy): string =>
  policy.kind === 'random' ? `random(seed=${policy.seed})` : policy.kind === 'engine' ? 'ours' : policy.kind

export const giniCoefficient = (xs: readonly number[]): number => {
  if (xs.length < 2) return 0
  const sorted = [...xs].sort((a, b) => a - b)
  const sum = sorted.reduce((s, x) => s + x, 0)
  if (sum === 0) return 0
  const weighted = sorted.reduce((s, x, i) => s + (2 * (i + 1) - sorted.length - 1) * x, 0)
  return weighted / (sorted.length * sum)
}

const round = (x: number): number => Math.round(x * 10_000) / 10_000

const splitOver = (members: readonly SimMember[]): (readonly [SimMember, number])[] => {
  const total = members.reduce((s, c) => s + c.w, 0)
  return members.map((m) => [m, m.w / total] as const)
}

/**
 * One replay of a pool's stored history. `recorded`: the stored decisions and load flags as they
 * are; otherwise the chooser decides and the load flags follow `load`. Returns the report and the
 * replay's own event log (its routing events only when the chooser produces them: the engine).
 */
const simulate = (
  events: readonly PoolEvent[],
  name: string,
  chooser: Chooser,
  recorded: boolean,
  load: LoadOptions,
): { report: FairnessReport; log: PoolEvent[] } => {
  const members = new Map<string, SimMember>()
  const holdings = new Map<string, Holding>()
  const declinedBy = new Map<string, Set<string>>()
  const decisions: ReplayedDecision[] = []
  const log: PoolEvent[] = []
  const newcomers = new Set<string>()
  const skipped = { offers: 0, declines: 0, directs: 0, releases: 0 }
  const totals = { routed: 0, unrouted: 0, declines: 0, expiries: 0, directs: 0, releases: 0 }
  let maxAbsLag = 0
  let maxConsecutive = 0
  let maxNewcomerBurst = 0
  let last: string | null = null
  let run = 0
  let runIsNewcomer = false
  const emit = (e: PoolEvent) => {
    chooser.observe(e)
    log.push(e)
  }
  const charge = (split: readonly (readonly [SimMember, number])[], m: SimMember, sign: 1 | -1) => {
    for (const [c, f] of split) c.share += sign * f
    m.count += sign
  }
  const trackLag = () => {
    for (const m of members.values()) maxAbsLag = Math.max(maxAbsLag, Math.abs(m.share - m.count))
  }
  for (const e of events) {
    switch (e.type) {
      case 'MemberJoined': {
        const m = members.get(e.data.practiceId)
        if (m === undefined)
          members.set(e.data.practiceId, {
            practiceId: e.data.practiceId,
            w: e.data.fteMilli,
            active: true,
            networks: new Set(e.data.insuranceNetworks),
            count: 0,
            share: 0,
            offered: 0,
            declined: 0,
            expired: 0,
            direct: 0,
            released: 0,
          })
        else {
          m.w = e.data.fteMilli
          m.active = true
          m.networks = new Set(e.data.insuranceNetworks)
        }
        newcomers.add(e.data.practiceId)
        emit(e)
        break
      }
      case 'MemberLeft':
      case 'MemberPaused': {
        const m = members.get(e.data.practiceId)
        if (m !== undefined) m.active = false
        emit(e)
        break
      }
      case 'MemberResumed': {
        const m = members.get(e.data.practiceId)
        if (m !== undefined) m.active = true
        newcomers.add(e.data.practiceId)
        emit(e)
        break
      }
      case 'MemberFteChanged': {
        const m = members.get(e.data.practiceId)
        if (m !== undefined) m.w = e.data.toFteMilli
        emit(e)
        break
      }
      case 'MemberNetworksChanged': {
        const m = members.get(e.data.practiceId)
        if (m !== undefined) m.networks = new Set(e.data.insuranceNetworks)
        emit(e)
        break
      }
      case 'ReferralRouted':
      case 'RoutingFoundNoCandidate': {
        const referralId = e.data.referralId
        if (holdings.has(referralId)) {
          // Held in this replay (its holder did not decline it here): the re-offer never happens.
          decisions.push({ referralId, chosen: null, skipped: true })
          skipped.offers++
          break
        }
        const network = e.data.request.insuranceNetworkId
        const stored = e.data.request.excludedPracticeIds
        const here = declinedBy.get(referralId)
        const excludedPracticeIds =
          here === undefined || [...here].every((p) => stored.includes(p as PracticeId))
            ? stored
            : ([...new Set([...stored, ...here])].sort() as PracticeId[])
        const excluded = new Set<string>(excludedPracticeIds)
        const cs = [...members.values()]
          .filter(
            (m) => m.active && !excluded.has(m.practiceId) && (network === null || m.networks.has(network)),
          )
          .sort(byId)
        const { chosen: chosenId, event } = chooser.choose(
          cs,
          { insuranceNetworkId: network, excludedPracticeIds },
          e,
        )
        if (event !== undefined) log.push(event)
        decisions.push({ referralId, chosen: chosenId, skipped: false })
        const chosen = chosenId === null ? undefined : members.get(chosenId)
        if (chosen === undefined || cs.length === 0) {
          totals.unrouted++
          break
        }
        totals.routed++
        const split = splitOver(cs)
        holdings.set(referralId, { practiceId: chosen.practiceId, routed: true, counted: true, split })
        charge(split, chosen, 1)
        chosen.offered++
        if (chosen.practiceId === last) run++
        else {
          run = 1
          last = chosen.practiceId
          runIsNewcomer = newcomers.has(chosen.practiceId)
        }
        newcomers.delete(chosen.practiceId)
        maxConsecutive = Math.max(maxConsecutive, run)
        if (runIsNewcomer) maxNewcomerBurst = Math.max(maxNewcomerBurst, run)
        trackLag()
        break
      }
      case 'DeclineRecorded': {
        const { referralId, practiceId, kind } = e.data
        const h = holdings.get(referralId)
        const m = members.get(practiceId)
        if (h === undefined || !h.routed || h.practiceId !== practiceId || m === undefined) {
          // This replay offered the referral to someone else, who (by the history) did not decline it.
          skipped.declines++
          break
        }
        const refunded = recorded ? e.data.refunded : load.onDecline === 'refund'
        holdings.delete(referralId)
        const set = declinedBy.get(referralId) ?? new Set<string>()
        set.add(practiceId)
        declinedBy.set(referralId, set)
        if (kind === 'decline') {
          m.declined++
          totals.declines++
        } else {
          m.expired++
          totals.expiries++
        }
        if (refunded && h.counted) charge(h.split, m, -1)
        emit({ type: 'DeclineRecorded', data: { referralId, practiceId, kind, refunded } })
        break
      }
      case 'DirectReferralRecorded': {
        const { referralId, practiceId } = e.data
        if (holdings.has(referralId)) {
          // The replay placed the referral with a member that kept it: no direct referral follows.
          skipped.directs++
          break
        }
        const m = members.get(practiceId)
        const counted = recorded ? e.data.counted : load.countDirectReferrals && m?.active === true
        totals.directs++
        const split =
          counted && m !== undefined ? splitOver([...members.values()].filter((x) => x.active)) : []
        holdings.set(referralId, { practiceId, routed: false, counted, split })
        if (m !== undefined) {
          m.direct++
          if (counted) {
            charge(split, m, 1)
            trackLag()
          }
        }
        emit({ type: 'DirectReferralRecorded', data: { referralId, practiceId, counted } })
        break
      }
      case 'ReferralReleased': {
        const { referralId } = e.data
        const h = holdings.get(referralId)
        if (h === undefined) {
          skipped.releases++
          break
        }
        const refunded = recorded ? e.data.refunded : h.counted
        holdings.delete(referralId)
        totals.releases++
        const m = members.get(h.practiceId)
        if (m !== undefined) {
          m.released++
          if (refunded && h.counted) charge(h.split, m, -1)
        }
        emit({ type: 'ReferralReleased', data: { referralId, practiceId: h.practiceId, refunded } })
        break
      }
    }
  }
  const held = new Map<string, number>()
  for (const h of holdings.values()) held.set(h.practiceId, (held.get(h.practiceId) ?? 0) + 1)
  const list = [...members.values()].sort(byId)
  return {
    log,
    report: {
      policy: name,
      ...totals,
      skipped,
      members: list.map((m) => ({
        practiceId: m.practiceId,
        fteMilli: m.w,
        count: m.count,
        offered: m.offered,
        declined: m.declined,
        expired: m.expired,
        direct: m.direct,
        released: m.released,
        held: held.get(m.practiceId) ?? 0,
        fairShare: round(m.share),
        lag: round(m.share - m.count),
      })),
      maxAbsLag: round(maxAbsLag),
      maxConsecutive,
      maxNewcomerBurst,
      gini: round(giniCoefficient(list.filter((m) => m.share >= 1).map((m) => m.count / m.share))),
      decisions,
    },
  }
}

/** Fairness figures of a pool's history as recorded. */
export const fairnessOf = (poolEvents: readonly PoolEvent[]): FairnessReport =>
  simulate(poolEvents, 'recorded', recordedChooser(), true, historyPolicy(poolEvents).options).report

/**
 * The pool's history re-decided by the engine under `policy` (declines, expiries, direct referrals
 * and releases replayed as `backtest` does): for a history the pool decider wrote under that same
 * policy, the stored events exactly.
 */
export const replayUnder = (poolEvents: readonly PoolEvent[], policy: RoutingPolicy): PoolEvent[] =>
  simulate(poolEvents, 'ours', engineChooser(policy), false, policy.options).log

/**
 * Replays a pool's stored history, in stored order, under another policy and reports fairness for
 * the recorded history, ours (the engine under the history's policy) and the other policy.
 *
 * - Membership (joins, leaves, pauses, resumes, FTE and network changes) is replayed as stored.
 * - Every stored routing decision is an offer of its referral, with its stored request (insurance
 *   network; practices that had declined it or let it expire by then, and any that declined it in
 *   this replay, are excluded). The policy chooses among the active members that remain. If the
 *   referral is held in this replay (the stored re-offer followed a decline that did not happen
 *   here), the decision is skipped.
 * - Declines and expiries belong to the practice: a stored decline by X is replayed when the
 *   referral is routed to X in this replay, and refunds X per `onDecline`; when the replay
 *   placed it elsewhere, that member keeps it (by the history it did not decline) and the decline
 *   is skipped.
 * - A direct referral goes to its named practice in every replay (skipped if the replay placed the
 *   referral with a member that kept it) and counts toward that member's load if
 *   `countDirectReferrals` and the member is active.
 * - A release (the referral left the pool) releases whoever holds it in this replay, refunding
 *   what its holding charged; skipped if nobody holds it.
 */
export const backtest = (poolEvents: readonly PoolEvent[], policy: BacktestPolicy): BacktestResult => {
  const base = historyPolicy(poolEvents)
  const routing = withLoad(policy.kind === 'engine' ? (policy.policy ?? base) : base, policy.load)
  const baseline = simulate(poolEvents, 'ours', engineChooser(base), false, base.options).report
  const candidate = simulate(
    poolEvents,
    policyName(policy),
    chooserFor(policy, routing),
    false,
    routing.options,
  ).report
  const differ = (a: ReplayedDecision, b: ReplayedDecision | undefined) =>
    b === undefined || a.skipped !== b.skipped || a.chosen !== b.chosen
  return {
    arrivals: baseline.decisions.length,
    recorded: fairnessOf(poolEvents),
    baseline,
    candidate,
    differingDecisions: baseline.decisions.filter((d, i) => differ(d, candidate.decisions[i])).length,
  }
}
