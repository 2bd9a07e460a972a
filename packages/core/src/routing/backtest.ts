import type { InsuranceNetworkId, PracticeId, ReferralId } from '../shared/ids.js'
import type { PoolEvent } from './codecs.js'
import { currentRoutingPolicy, routingEvent } from './decider.js'
import { PoolEngine } from './engine.js'

/** Policies a pool's history can be replayed under. */
export type BacktestPolicy =
  | { readonly kind: 'engine' }
  | { readonly kind: 'least-count' }
  | { readonly kind: 'round-robin' }
  | { readonly kind: 'random'; readonly seed: number }
  | { readonly kind: 'smooth-wrr' }

export interface MemberFairness {
  readonly practiceId: PracticeId
  readonly fteMilli: number
  readonly count: number
  /** Fluid fair share: each routed referral split over its candidates in proportion to FTE. */
  readonly fairShare: number
  /** fairShare − count (positive: owed referrals). */
  readonly lag: number
}

export interface FairnessReport {
  readonly policy: string
  readonly routed: number
  readonly unrouted: number
  readonly members: readonly MemberFairness[]
  /** Largest |fair share − count| of any member after any decision. */
  readonly maxAbsLag: number
  /** Longest run of consecutive referrals to one member. */
  readonly maxConsecutive: number
  /** Longest run of consecutive referrals a member got right after joining or resuming. */
  readonly maxNewcomerBurst: number
  /** Gini coefficient of count / fair share over members with fair share ≥ 1 (0 = proportional). */
  readonly gini: number
}

export interface BacktestResult {
  readonly arrivals: number
  /** The decisions as recorded in the log. */
  readonly recorded: FairnessReport
  /** The engine's policy replayed on the same arrivals without declines. */
  readonly baseline: FairnessReport
  /** The other policy replayed on the same arrivals without declines. */
  readonly candidate: FairnessReport
  /** Arrivals where baseline and candidate chose differently. */
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
}

interface Arrival {
  readonly referralId: ReferralId
  readonly insuranceNetworkId: InsuranceNetworkId | null
  readonly recorded: PracticeId | null
}

/** A policy as a chooser over the (sorted) candidates of one arrival. */
interface Chooser {
  readonly membership: (e: PoolEvent) => void
  readonly choose: (candidates: readonly SimMember[], arrival: Arrival) => PracticeId
}

const byId = (a: { practiceId: string }, b: { practiceId: string }) =>
  a.practiceId < b.practiceId ? -1 : a.practiceId > b.practiceId ? 1 : 0

const engineChooser = (): Chooser => {
  const engine = new PoolEngine()
  return {
    membership: (e) => engine.apply(e),
    choose: (_candidates, arrival) => {
      const request = { insuranceNetworkId: arrival.insuranceNetworkId, excludedPracticeIds: [] }
      const ranking = engine.rank(request, 1)
      const event = routingEvent('backtest', arrival.referralId, request, ranking, currentRoutingPolicy)
      engine.apply(event)
      return ranking.chosen as PracticeId
    },
  }
}

const leastCount = (): Chooser => ({
  membership: () => undefined,
  // count/w smallest, compared exactly as count_a·w_b < count_b·w_a.
  choose: (cs) =>
    cs.reduce((best, c) => (c.count * best.w < best.count * c.w ? c : best), cs[0] as SimMember).practiceId,
})

const roundRobin = (): Chooser => {
  let last: string | null = null
  return {
    membership: () => undefined,
    choose: (cs) => {
      const next = cs.find((c) => last === null || c.practiceId > last) ?? (cs[0] as SimMember)
      last = next.practiceId
      return next.practiceId
    },
  }
}

const weightedRandom = (seed: number): Chooser => {
  const next = mulberry32(seed)
  return {
    membership: () => undefined,
    choose: (cs) => {
      const total = cs.reduce((s, c) => s + c.w, 0)
      let r = next() % total
      for (const c of cs) {
        if (r < c.w) return c.practiceId
        r -= c.w
      }
      return (cs[cs.length - 1] as SimMember).practiceId
    },
  }
}

/** nginx smooth weighted round-robin: current += w for all, pick the largest, subtract the total. */
const smoothWrr = (): Chooser => {
  const current = new Map<string, number>()
  return {
    membership: (e) => {
      if (e.type === 'MemberJoined' || e.type === 'MemberResumed') current.set(e.data.practiceId, 0)
    },
    choose: (cs) => {
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
      return chosen.practiceId
    },
  }
}

const recordedChooser = (): Chooser => ({
  membership: () => undefined,
  choose: (_cs, arrival) => arrival.recorded as PracticeId,
})

const chooserFor = (policy: BacktestPolicy): Chooser => {
  switch (policy.kind) {
    case 'engine':
      return engineChooser()
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
  policy.kind === 'random' ? `random(seed=${policy.seed})` : policy.kind

export const giniCoefficient = (xs: readonly number[]): number => {
  if (xs.length < 2) return 0
  const sorted = [...xs].sort((a, b) => a - b)
  const sum = sorted.reduce((s, x) => s + x, 0)
  if (sum === 0) return 0
  const weighted = sorted.reduce((s, x, i) => s + (2 * (i + 1) - sorted.length - 1) * x, 0)
  return weighted / (sorted.length * sum)
}

const simulate = (
  events: readonly PoolEvent[],
  name: string,
  chooser: Chooser,
  useRecorded: boolean,
): { report: FairnessReport; choices: (PracticeId | null)[] } => {
  const members = new Map<string, SimMember>()
  const choices: (PracticeId | null)[] = []
  const newcomers = new Set<string>()
  let routed = 0
  let unrouted = 0
  let maxAbsLag = 0
  let maxConsecutive = 0
  let maxNewcomerBurst = 0
  let last: string | null = null
  let run = 0
  let runIsNewcomer = false
  for (const e of events) {
    switch (e.type) {
      case 'MemberJoined': {
        const m = members.get(e.data.practiceId)
        members.set(e.data.practiceId, {
          practiceId: e.data.practiceId,
          w: e.data.fteMilli,
          active: true,
          networks: new Set(e.data.insuranceNetworks),
          count: m?.count ?? 0,
          share: m?.share ?? 0,
        })
        newcomers.add(e.data.practiceId)
        break
      }
      case 'MemberLeft':
      case 'MemberPaused': {
        const m = members.get(e.data.practiceId)
        if (m !== undefined) m.active = false
        break
      }
      case 'MemberResumed': {
        const m = members.get(e.data.practiceId)
        if (m !== undefined) m.active = true
        newcomers.add(e.data.practiceId)
        break
      }
      case 'MemberFteChanged': {
        const m = members.get(e.data.practiceId)
        if (m !== undefined) m.w = e.data.toFteMilli
        break
      }
      case 'MemberNetworksChanged': {
        const m = members.get(e.data.practiceId)
        if (m !== undefined) m.networks = new Set(e.data.insuranceNetworks)
        break
      }
      case 'ReferralRouted':
      case 'RoutingFoundNoCandidate': {
        const network = e.data.request.insuranceNetworkId
        const arrival: Arrival = {
          referralId: e.data.referralId,
          insuranceNetworkId: network,
          recorded: e.type === 'ReferralRouted' ? e.data.chosenPracticeId : null,
        }
        const cs = [...members.values()]
          .filter((m) => m.active && (network === null || m.networks.has(network)))
          .sort(byId)
        const chosenId = useRecorded ? arrival.recorded : cs.length === 0 ? null : chooser.choose(cs, arrival)
        choices.push(chosenId)
        const chosen = chosenId === null ? undefined : members.get(chosenId)
        if (chosen === undefined || cs.length === 0) {
          unrouted++
          break
        }
        routed++
        const total = cs.reduce((s, c) => s + c.w, 0)
        for (const c of cs) c.share += c.w / total
        chosen.count++
        if (chosen.practiceId === last) run++
        else {
          run = 1
          last = chosen.practiceId
          runIsNewcomer = newcomers.has(chosen.practiceId)
        }
        newcomers.delete(chosen.practiceId)
        maxConsecutive = Math.max(maxConsecutive, run)
        if (runIsNewcomer) maxNewcomerBurst = Math.max(maxNewcomerBurst, run)
        for (const m of members.values()) maxAbsLag = Math.max(maxAbsLag, Math.abs(m.share - m.count))
        break
      }
      case 'DeclineRecorded':
      case 'DirectReferralRecorded':
      case 'ReferralReleased':
        break
    }
    if (e.type !== 'ReferralRouted' && e.type !== 'RoutingFoundNoCandidate') chooser.membership(e)
  }
  const list = [...members.values()].sort(byId)
  return {
    choices,
    report: {
      policy: name,
      routed,
      unrouted,
      members: list.map((m) => ({
        practiceId: m.practiceId,
        fteMilli: m.w,
        count: m.count,
        fairShare: round(m.share),
        lag: round(m.share - m.count),
      })),
      maxAbsLag: round(maxAbsLag),
      maxConsecutive,
      maxNewcomerBurst,
      gini: round(giniCoefficient(list.filter((m) => m.share >= 1).map((m) => m.count / m.share))),
    },
  }
}

const round = (x: number): number => Math.round(x * 10_000) / 10_000

/** Fairness figures of a pool's routing decisions as recorded. */
export const fairnessOf = (poolEvents: readonly PoolEvent[]): FairnessReport =>
  simulate(poolEvents, 'recorded', recordedChooser(), true).report

/**
 * Replays a pool's arrival and membership history under another policy and reports fairness for
 * the recorded decisions, the engine's policy and the other policy. Every routing decision in the
 * log is one arrival (with its insurance network); declines, direct referrals and releases are not
 * replayed, because whom a referral would have been declined by depends on where it went.
 */
export const backtest = (poolEvents: readonly PoolEvent[], policy: BacktestPolicy): BacktestResult => {
  const base = simulate(poolEvents, 'engine', engineChooser(), false)
  const other = simulate(poolEvents, policyName(policy), chooserFor(policy), false)
  return {
    arrivals: base.choices.length,
    recorded: fairnessOf(poolEvents),
    baseline: base.report,
    candidate: other.report,
    differingDecisions: base.choices.filter((c, i) => c !== other.choices[i]).length,
  }
}
