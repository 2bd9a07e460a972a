import type { PoolEvent } from '../routing/codecs.js'
import { evolvePool, initialPoolState, type PoolState, poolEngine } from '../routing/decider.js'
import { LAG_CAP } from '../routing/engine.js'
import type { PracticeId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { isoWeekOf } from './reports.js'

/** A pool event with the pool it belongs to and when it happened (the envelope's occurred-at). */
export interface DatedPoolEvent {
  readonly pool: string
  readonly at: Instant
  readonly event: PoolEvent
  /** Before the report's period: replayed for the pool's state, not reported. */
  readonly before?: true
}

export interface WeeklyMemberFairness {
  readonly practiceId: PracticeId
  readonly fteMilli: number
  /** Routing decisions in the week that listed it as a candidate. */
  readonly eligibleDecisions: number
  readonly received: number
  /** Σ over the week's decisions it was a candidate of: its FTE / the candidates' total FTE. */
  readonly entitlement: number
  /** entitlement − received at the end of the week (positive: behind). */
  readonly lag: number
  /**
   * The router's own lag λ of this member after the week's last decision (its FTE share since the
   * pool's last placement minus what it received, with refunds; positive: owed), replayed from the
   * pool's whole history; null when it is not an active member then.
   */
  readonly routerLag: number | null
}

export interface WeeklyPoolFairness {
  readonly pool: string
  /** Monday (UTC) of the ISO week. */
  readonly week: string
  readonly decisions: number
  readonly members: readonly WeeklyMemberFairness[]
  /** Largest |entitlement − received| of any member after any decision of the week. */
  readonly maxAbsLag: number
  /**
   * max − min of received / FTE over the members that were candidates in the week: how unequal
   * the per-FTE load is (0 = every member got the same per FTE).
   */
  readonly fteNormalisedSpread: number
  /** Longest run of consecutive decisions of the week for one member. */
  readonly longestRun: number
  /** Largest |λ| (the router's lag, see `routerLag`) of any member after any decision of the week. */
  readonly routerMaxAbsLag: number
  /**
   * The router broke its own bound after some decision of the week (SPEC §3 "Bounded lag", the
   * bounds of `routing/engine.ts`): −1 < λ < 1 for every member while the pool's period (since its
   * last membership, pause or FTE change) has had no decline, exclusion or direct referral;
   * otherwise λ < LAG_CAP + the refunded slots not used yet, and λ > −2(n − 1).
   */
  readonly outsideInvariant: boolean
}

const round = (x: number): number => Math.round(x * 10_000) / 10_000

interface Tally {
  fteMilli: number
  eligibleDecisions: number
  received: number
  entitlement: number
}

/** Per pool: the router's state replayed so far and whether its current period is static. */
interface Replay {
  state: PoolState
  /** No decline, exclusion or direct referral since the last placement: the strict bound holds. */
  strict: boolean
}

const PLACEMENTS = new Set<PoolEvent['type']>([
  'MemberJoined',
  'MemberLeft',
  'MemberPaused',
  'MemberResumed',
  'MemberFteChanged',
  'MemberNetworksChanged',
])

const lagNumber = (l: { readonly num: bigint; readonly den: bigint }): number => Number(l.num) / Number(l.den)

/** The router's lags after a decision, and whether they are within the router's bound. */
const routerCheck = (replay: Replay): { lags: Map<string, number>; maxAbs: number; outside: boolean } => {
  const engine = poolEngine(replay.state)
  const lags = new Map(engine.lags().map((l) => [l.practiceId, lagNumber(l)]))
  const pending = engine.pendingRefundSlots()
  const n = lags.size
  let maxAbs = 0
  let outside = false
  for (const lag of lags.values()) {
    maxAbs = Math.max(maxAbs, Math.abs(lag))
    const inside = replay.strict
      ? lag > -1 && lag < 1
      : lag < LAG_CAP + pending && lag > -2 * Math.max(1, n - 1)
    if (!inside) outside = true
  }
  return { lags, maxAbs, outside }
}

/**
 * Fairness of the recorded routing decisions, per pool and ISO week. Every `ReferralRouted` event
 * records its candidates — the members that could take the referral at that moment (active, in the
 * referral's insurance network, not having declined it) — so a member's entitlement grows only over
 * the stretches it was eligible: a paused, excluded or declining specialist is not counted as
 * behind for referrals it could not take. Each decision adds fte/Σfte of its candidates to each
 * candidate's entitlement and 1 to the chosen one's received count; tallies restart every week.
 * Events other than `ReferralRouted` do not change these figures. Beside them, every pool event
 * (those marked `before` too) is replayed through the router (`evolvePool`), and after each
 * decision of the week the router's own lags are read: `routerLag`, `routerMaxAbsLag`, and
 * `outsideInvariant` when they leave the router's bound. (Week-local entitlement − received is
 * not the router's lag: a week starts where the last one left off, declined offers are refunded,
 * and a period starts at each placement, so it may pass 1 while the router keeps its bound.)
 */
export const weeklyFairness = (events: readonly DatedPoolEvent[]): WeeklyPoolFairness[] => {
  const cells = new Map<
    string,
    {
      pool: string
      week: string
      decisions: number
      members: Map<PracticeId, Tally>
      maxAbsLag: number
      routerMaxAbsLag: number
      routerLags: Map<string, number>
      outside: boolean
      longestRun: number
      last: PracticeId | null
      run: number
    }
  >()
  const replays = new Map<string, Replay>()
  for (const { pool, at, event, before } of events) {
    let replay = replays.get(pool)
    if (replay === undefined) {
      replay = { state: initialPoolState(), strict: true }
      replays.set(pool, replay)
    }
    replay.state = evolvePool(replay.state, event)
    if (PLACEMENTS.has(event.type)) replay.strict = true
    else if (event.type === 'DeclineRecorded' || event.type === 'DirectReferralRecorded')
      replay.strict = false
    else if (event.type === 'ReferralRouted' && event.data.exclusions.length > 0) replay.strict = false
    if (event.type !== 'ReferralRouted' || before === true) continue
    const check = routerCheck(replay)
    const week = isoWeekOf(at)
    const id = JSON.stringify([pool, week])
    let cell = cells.get(id)
    if (cell === undefined) {
      cell = {
        pool,
        week,
        decisions: 0,
        members: new Map(),
        maxAbsLag: 0,
        routerMaxAbsLag: 0,
        routerLags: new Map(),
        outside: false,
        longestRun: 0,
        last: null,
        run: 0,
      }
      cells.set(id, cell)
    }
    const d = event.data
    const total = d.candidates.reduce((s, c) => s + c.fteMilli, 0)
    cell.decisions++
    for (const c of d.candidates) {
      const m = cell.members.get(c.practiceId) ?? {
        fteMilli: c.fteMilli,
        eligibleDecisions: 0,
        received: 0,
        entitlement: 0,
      }
      m.fteMilli = c.fteMilli
      m.eligibleDecisions++
      m.entitlement += total === 0 ? 0 : c.fteMilli / total
      cell.members.set(c.practiceId, m)
    }
    const chosen = cell.members.get(d.chosenPracticeId) ?? {
      fteMilli: 0,
      eligibleDecisions: 0,
      received: 0,
      entitlement: 0,
    }
    chosen.received++
    cell.members.set(d.chosenPracticeId, chosen)
    cell.run = cell.last === d.chosenPracticeId ? cell.run + 1 : 1
    cell.last = d.chosenPracticeId
    cell.longestRun = Math.max(cell.longestRun, cell.run)
    for (const m of cell.members.values())
      cell.maxAbsLag = Math.max(cell.maxAbsLag, Math.abs(m.entitlement - m.received))
    cell.routerMaxAbsLag = Math.max(cell.routerMaxAbsLag, check.maxAbs)
    cell.routerLags = check.lags
    if (check.outside) cell.outside = true
  }
  return [...cells.values()]
    .sort((a, b) => (a.pool === b.pool ? (a.week < b.week ? -1 : 1) : a.pool < b.pool ? -1 : 1))
    .map((cell) => {
      const members = [...cell.members.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([practiceId, m]) => ({
          practiceId,
          fteMilli: m.fteMilli,
          eligibleDecisions: m.eligibleDecisions,
          received: m.received,
          entitlement: round(m.entitlement),
          lag: round(m.entitlement - m.received),
          routerLag: ((lag) => (lag === undefined ? null : round(lag)))(cell.routerLags.get(practiceId)),
        }))
      const perFte = members.filter((m) => m.fteMilli > 0).map((m) => m.received / (m.fteMilli / 1000))
      return {
        pool: cell.pool,
        week: cell.week,
        decisions: cell.decisions,
        members,
        maxAbsLag: round(cell.maxAbsLag),
        fteNormalisedSpread: perFte.length === 0 ? 0 : round(Math.max(...perFte) - Math.min(...perFte)),
        longestRun: cell.longestRun,
        routerMaxAbsLag: round(cell.routerMaxAbsLag),
        outsideInvariant: cell.outside,
      }
    })
}
