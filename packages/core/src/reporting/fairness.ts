import type { PoolEvent } from '../routing/codecs.js'
import type { PracticeId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { isoWeekOf } from './reports.js'

/** A pool event with the pool it belongs to and when it happened (the envelope's occurred-at). */
export interface DatedPoolEvent {
  readonly pool: string
  readonly at: Instant
  readonly event: PoolEvent
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
  /** The routing invariant |lag| < 1 did not hold at some point of the week. */
  readonly outsideInvariant: boolean
}

const round = (x: number): number => Math.round(x * 10_000) / 10_000

interface Tally {
  fteMilli: number
  eligibleDecisions: number
  received: number
  entitlement: number
}

/**
 * Fairness of the recorded routing decisions, per pool and ISO week. Every `ReferralRouted` event
 * records its candidates — the members that could take the referral at that moment (active, in the
 * referral's insurance network, not having declined it) — so a member's entitlement grows only over
 * the stretches it was eligible: a paused, excluded or declining specialist is not counted as
 * behind for referrals it could not take. Each decision adds fte/Σfte of its candidates to each
 * candidate's entitlement and 1 to the chosen one's received count; tallies restart every week.
 * Events other than `ReferralRouted` do not change the figures.
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
      longestRun: number
      last: PracticeId | null
      run: number
    }
  >()
  for (const { pool, at, event } of events) {
    if (event.type !== 'ReferralRouted') continue
    const week = isoWeekOf(at)
    const id = JSON.stringify([pool, week])
    let cell = cells.get(id)
    if (cell === undefined) {
      cell = { pool, week, decisions: 0, members: new Map(), maxAbsLag: 0, longestRun: 0, last: null, run: 0 }
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
        outsideInvariant: cell.maxAbsLag >= 1,
      }
    })
}
