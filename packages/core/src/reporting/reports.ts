import type { PracticeId } from '../shared/ids.js'
import { type Instant, millisOf } from '../shared/time.js'
import type { ReferralFacts } from './facts.js'

/**
 * Report figures over referral-facts rows (SPEC §3 "Reporting"). Pure: every implementation of the
 * facts read model (in memory, PostgreSQL) hands its rows to these functions, so both give the same
 * figures. Definitions are in the core README ("Reports").
 */

// ---------------------------------------------------------------------------- grouping

/** Dimensions a report can be grouped (and filtered) by. */
export const REPORT_DIMENSIONS = [
  'region',
  'specialty',
  'category',
  'subcategory',
  'pool',
  'urgency',
  'route',
  'senderPractice',
  'receivingPractice',
  'week',
  'channel',
  'campaign',
  'location',
  'serviceLine',
  'referringPractice',
] as const
export type ReportDimension = (typeof REPORT_DIMENSIONS)[number]

/** The value of a group column when the row has none (no receiving practice, no campaign, …). */
export const NO_VALUE = '(none)'

const DAY_MS = 86_400_000

/** Monday (UTC) of the ISO week an instant falls in, as `YYYY-MM-DD`. */
export const isoWeekOf = (instant: Instant): string => {
  const day = Math.floor(millisOf(instant) / DAY_MS)
  // 1970-01-01 was a Thursday: (day + 3) mod 7 is the number of days since Monday.
  const monday = day - ((((day + 3) % 7) + 7) % 7)
  return new Date(monday * DAY_MS).toISOString().slice(0, 10)
}

/** The pool a referral is filed in, named like its routing stream (`region:specialty:category:sub|*`). */
export const poolOf = (f: ReferralFacts): string =>
  `${f.regionId}:${f.specialtyId}:${f.categoryId}:${f.subcategoryId ?? '*'}`

export const dimensionValue = (f: ReferralFacts, d: ReportDimension): string => {
  switch (d) {
    case 'region':
      return f.regionId
    case 'specialty':
      return f.specialtyId
    case 'category':
      return f.categoryId
    case 'subcategory':
      return f.subcategoryId ?? NO_VALUE
    case 'pool':
      return poolOf(f)
    case 'urgency':
      return f.urgency
    case 'route':
      return f.route
    case 'senderPractice':
      return f.senderPracticeId
    case 'receivingPractice':
      return f.receivingPracticeId ?? NO_VALUE
    case 'week':
      return isoWeekOf(f.sentAt)
    case 'channel':
      return f.channel ?? NO_VALUE
    case 'campaign':
      return f.campaign ?? NO_VALUE
    case 'location':
      return f.location ?? NO_VALUE
    case 'serviceLine':
      return f.serviceLine ?? NO_VALUE
    case 'referringPractice':
      return f.referringPracticeId ?? NO_VALUE
  }
}

/** Rows whose value of each given dimension is the given one. */
export type ReportFilters = Readonly<Partial<Record<ReportDimension, string>>>

export const filterFacts = (rows: readonly ReferralFacts[], filters: ReportFilters): ReferralFacts[] => {
  const entries = Object.entries(filters) as [ReportDimension, string | undefined][]
  return rows.filter((f) => entries.every(([d, v]) => v === undefined || dimensionValue(f, d) === v))
}

export interface Group {
  readonly key: Readonly<Partial<Record<ReportDimension, string>>>
  readonly rows: readonly ReferralFacts[]
}

/** Rows grouped by the dimensions (one group of everything for `[]`), groups in key order. */
export const groupFacts = (rows: readonly ReferralFacts[], by: readonly ReportDimension[]): Group[] => {
  const groups = new Map<string, { key: Partial<Record<ReportDimension, string>>; rows: ReferralFacts[] }>()
  for (const f of rows) {
    const values = by.map((d) => dimensionValue(f, d))
    const id = JSON.stringify(values)
    let g = groups.get(id)
    if (g === undefined) {
      g = { key: Object.fromEntries(by.map((d, i) => [d, values[i] as string])), rows: [] }
      groups.set(id, g)
    }
    g.rows.push(f)
  }
  return [...groups.entries()].sort(([a], [b]) => compareCodeUnits(a, b)).map(([, g]) => g)
}

// ---------------------------------------------------------------------------- statistics

/**
 * Nearest-rank percentile: the smallest value such that at least `p` of the values are ≤ it
 * (`sorted[ceil(p·n) − 1]`); null for no values. Always one of the values, never interpolated.
 */
export const percentile = (values: readonly number[], p: number): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil(p * sorted.length))
  return sorted[rank - 1] ?? null
}

const HOUR_MS = 3_600_000

const hoursBetween = (from: Instant, to: Instant): number => (millisOf(to) - millisOf(from)) / HOUR_MS

export interface Distribution {
  readonly n: number
  readonly p50: number | null
  readonly p90: number | null
}

export const distributionOf = (values: readonly number[]): Distribution => ({
  n: values.length,
  p50: percentile(values, 0.5),
  p90: percentile(values, 0.9),
})

const ratio = (num: number, den: number): number | null => (den === 0 ? null : num / den)

// ---------------------------------------------------------------------------- figures

/** The funnel of one cell: how many referrals reached each stage and how many dropped out where. */
export interface FunnelFigures {
  readonly sent: number
  readonly delivered: number
  readonly accepted: number
  readonly scheduled: number
  readonly completed: number
  readonly deliveries: number
  readonly declines: number
  readonly expiries: number
  readonly noShows: number
  /** Cancelled before acceptance, after acceptance (not yet scheduled), after scheduling. */
  readonly cancelledBeforeAccept: number
  readonly cancelledAfterAccept: number
  readonly cancelledAfterSchedule: number
  /** Went back to the sender at least once. */
  readonly returned: number
  /** Waiting in the intake queue now. */
  readonly unassigned: number
  /** declines / deliveries, expiries / deliveries (null without deliveries). */
  readonly declineRate: number | null
  readonly expiryRate: number | null
}

export const funnelOf = (rows: readonly ReferralFacts[]): FunnelFigures => {
  let delivered = 0
  let accepted = 0
  let scheduled = 0
  let completed = 0
  let deliveries = 0
  let declines = 0
  let expiries = 0
  let noShows = 0
  let cancelledBeforeAccept = 0
  let cancelledAfterAccept = 0
  let cancelledAfterSchedule = 0
  let returned = 0
  let unassigned = 0
  for (const f of rows) {
    if (f.firstDeliveredAt !== null) delivered++
    if (f.acceptedAt !== null) accepted++
    if (f.scheduledAt !== null) scheduled++
    if (f.completedAt !== null) completed++
    deliveries += f.deliveryCount
    declines += f.declineCount
    expiries += f.expiryCount
    noShows += f.noShowCount
    if (f.cancelledAt !== null) {
      if (f.scheduledAt !== null) cancelledAfterSchedule++
      else if (f.acceptedAt !== null) cancelledAfterAccept++
      else cancelledBeforeAccept++
    }
    if (f.returnedAt !== null) returned++
    if (f.status === 'unassigned') unassigned++
  }
  return {
    sent: rows.length,
    delivered,
    accepted,
    scheduled,
    completed,
    deliveries,
    declines,
    expiries,
    noShows,
    cancelledBeforeAccept,
    cancelledAfterAccept,
    cancelledAfterSchedule,
    returned,
    unassigned,
    declineRate: ratio(declines, deliveries),
    expiryRate: ratio(expiries, deliveries),
  }
}

/** Hours from sending to acceptance, to the booking of the first appointment, to completion. */
export interface TimingFigures {
  readonly timeToAccept: Distribution
  readonly timeToSchedule: Distribution
  readonly timeToComplete: Distribution
}

const hoursTo = (rows: readonly ReferralFacts[], pick: (f: ReferralFacts) => Instant | null): number[] =>
  rows.flatMap((f) => {
    const at = pick(f)
    return at === null ? [] : [hoursBetween(f.sentAt, at)]
  })

export const timingsOf = (rows: readonly ReferralFacts[]): TimingFigures => ({
  timeToAccept: distributionOf(hoursTo(rows, (f) => f.acceptedAt)),
  timeToSchedule: distributionOf(hoursTo(rows, (f) => f.scheduledAt)),
  timeToComplete: distributionOf(hoursTo(rows, (f) => f.completedAt)),
})

/** One specialist's waiting time: days from sending to the (last booked) appointment. */
export interface SpecialistWait {
  readonly practiceId: PracticeId
  readonly n: number
  readonly p50Days: number | null
  readonly p90Days: number | null
}

/**
 * Waiting time per specialist and its dispersion across the specialists of the cell (a pool, when
 * grouped by pool): the spread of the specialists' median waits — min, max, range, mean, population
 * standard deviation and coefficient of variation (sd / mean).
 */
export interface WaitTimeFigures {
  readonly referralsWithAppointment: number
  readonly specialists: readonly SpecialistWait[]
  readonly medianWait: {
    readonly min: number | null
    readonly max: number | null
    readonly range: number | null
    readonly mean: number | null
    readonly sd: number | null
    readonly cv: number | null
  }
}

/** The order of specialists in a wait-time cell, and of groups in a report (code-unit order). */
export const compareCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export const waitTimesOf = (rows: readonly ReferralFacts[]): WaitTimeFigures => {
  const byPractice = new Map<PracticeId, number[]>()
  let referralsWithAppointment = 0
  for (const f of rows) {
    if (f.appointmentAt === null || f.receivingPracticeId === null) continue
    referralsWithAppointment++
    const waits = byPractice.get(f.receivingPracticeId) ?? []
    waits.push((millisOf(f.appointmentAt) - millisOf(f.sentAt)) / DAY_MS)
    byPractice.set(f.receivingPracticeId, waits)
  }
  const specialists = [...byPractice.entries()]
    .sort(([a], [b]) => compareCodeUnits(a, b))
    .map(([practiceId, waits]) => ({
      practiceId,
      n: waits.length,
      p50Days: percentile(waits, 0.5),
      p90Days: percentile(waits, 0.9),
    }))
  return { referralsWithAppointment, specialists, medianWait: medianWaitOf(specialists) }
}

/** The dispersion of the specialists' median waits (in the order given: by practice id). */
export const medianWaitOf = (specialists: readonly SpecialistWait[]): WaitTimeFigures['medianWait'] => {
  const medians = specialists.flatMap((s) => (s.p50Days === null ? [] : [s.p50Days]))
  if (medians.length === 0) return { min: null, max: null, range: null, mean: null, sd: null, cv: null }
  const min = Math.min(...medians)
  const max = Math.max(...medians)
  const mean = medians.reduce((s, x) => s + x, 0) / medians.length
  const sd = Math.sqrt(medians.reduce((s, x) => s + (x - mean) ** 2, 0) / medians.length)
  return { min, max, range: max - min, mean, sd, cv: mean === 0 ? null : sd / mean }
}

/** The intake queue: referrals unassigned now, and how long they have waited (hours, at `now`). */
export interface BacklogFigures {
  readonly unassigned: number
  readonly age: Distribution
  readonly oldestHours: number | null
}

export const backlogOf = (rows: readonly ReferralFacts[], now: Instant): BacklogFigures => {
  const ages = rows.flatMap((f) =>
    f.status === 'unassigned' && f.unassignedSince !== null ? [hoursBetween(f.unassignedSince, now)] : [],
  )
  return {
    unassigned: ages.length,
    age: distributionOf(ages),
    oldestHours: ages.length === 0 ? null : Math.max(...ages),
  }
}

// ---------------------------------------------------------------------------- suppression

/** Who looks at a report: the practices the caller is a member of. */
export interface ReportViewer {
  readonly practiceIds: readonly PracticeId[]
}

/** Default small-number threshold: cells from fewer referrals are suppressed. */
export const DEFAULT_SUPPRESSION_THRESHOLD = 5

/** What a suppressed figure reads as: `"< 5"`. */
export const suppressedFigure = (threshold: number): string => `< ${threshold}`

/**
 * Small numbers protect patients: a cell computed from fewer than `threshold` referrals is
 * suppressed unless the caller is a member of the receiving practice of every one of them (a
 * practice's own figures about the referrals it holds are never hidden from it).
 */
export const mustSuppress = (
  rows: readonly ReferralFacts[],
  viewer: ReportViewer,
  threshold: number,
): boolean =>
  rows.length < threshold &&
  !rows.every((f) => f.receivingPracticeId !== null && viewer.practiceIds.includes(f.receivingPracticeId))

/** A figure type with every number replaced by "number or the suppression marker". */
export type Suppressible<T> = T extends number
  ? number | string
  : T extends string | boolean | null
    ? T
    : T extends readonly (infer I)[]
      ? readonly Suppressible<I>[]
      : T extends object
        ? { readonly [K in keyof T]: Suppressible<T[K]> }
        : T

/** Every number in `figures` replaced by the marker (strings, such as practice ids, kept). */
export const suppressFigures = <T>(figures: T, marker: string): Suppressible<T> => {
  const go = (v: unknown): unknown => {
    if (typeof v === 'number') return marker
    if (Array.isArray(v)) return v.map(go)
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, go(x)]))
    }
    return v
  }
  return go(figures) as Suppressible<T>
}

export interface ReportCell<F> {
  readonly group: Readonly<Partial<Record<ReportDimension, string>>>
  /** Referrals the cell is computed from (the marker when suppressed). */
  readonly referrals: number | string
  readonly suppressed: boolean
  readonly figures: Suppressible<F>
}

export interface ReportOptions {
  readonly groupBy: readonly ReportDimension[]
  readonly filters?: ReportFilters
  readonly viewer: ReportViewer
  readonly threshold?: number
}

/** Filters, groups, computes `figuresOf` for each group and suppresses small cells. */
export const computeReport = <F>(
  rows: readonly ReferralFacts[],
  options: ReportOptions,
  figuresOf: (rows: readonly ReferralFacts[]) => F,
): ReportCell<F>[] => {
  const threshold = options.threshold ?? DEFAULT_SUPPRESSION_THRESHOLD
  const marker = suppressedFigure(threshold)
  return groupFacts(filterFacts(rows, options.filters ?? {}), options.groupBy).map((g) =>
    reportCell(
      g.key,
      g.rows.length,
      mustSuppress(g.rows, options.viewer, threshold),
      figuresOf(g.rows),
      marker,
    ),
  )
}

/** A cell of `n` referrals with its figures, every number replaced by `marker` when suppressed. */
export const reportCell = <F>(
  group: Group['key'],
  n: number,
  suppressed: boolean,
  figures: F,
  marker: string,
): ReportCell<F> => ({
  group,
  referrals: suppressed ? marker : n,
  suppressed,
  figures: suppressed ? suppressFigures(figures, marker) : (figures as Suppressible<F>),
})

/**
 * Inside a wait-time cell shown in full, each specialist computed from fewer than `threshold`
 * referrals is suppressed, unless it is one of the viewer's practices.
 */
export const suppressSmallSpecialists = (
  cell: ReportCell<WaitTimeFigures>,
  viewer: ReportViewer,
  threshold: number,
): ReportCell<WaitTimeFigures> => {
  if (cell.suppressed) return cell
  const marker = suppressedFigure(threshold)
  return {
    ...cell,
    figures: {
      ...cell.figures,
      specialists: cell.figures.specialists.map((s) =>
        typeof s.n === 'number' && s.n < threshold && !viewer.practiceIds.includes(s.practiceId)
          ? suppressFigures(s, marker)
          : s,
      ),
    },
  }
}

/**
 * The wait-time report: `waitTimesOf` per cell, and inside a cell shown in full, each specialist
 * computed from fewer than `threshold` referrals is suppressed too, unless it is the caller's own.
 */
export const waitTimesReport = (
  rows: readonly ReferralFacts[],
  options: ReportOptions,
): ReportCell<WaitTimeFigures>[] => {
  const threshold = options.threshold ?? DEFAULT_SUPPRESSION_THRESHOLD
  return computeReport(rows, options, waitTimesOf).map((cell) =>
    suppressSmallSpecialists(cell, options.viewer, threshold),
  )
}

// ---------------------------------------------------------------------------- the fact reports

/** The reports computed from the referral-facts rows (fairness reads the routing decisions). */
export const FACT_REPORTS = ['funnel', 'timings', 'wait-times', 'attribution'] as const
export type FactReport = (typeof FACT_REPORTS)[number]

/** One fact report's cells: which report, and `now` for the backlog's age (funnel). */
export interface FactReportOptions extends ReportOptions {
  readonly report: FactReport
  readonly now: Instant
}

/**
 * The cells of one fact report over `rows` — the reference definition. A facts read model that can
 * aggregate where its rows live (PostgreSQL: `ReferralFactsReadModel.report`) must give exactly
 * these cells for the rows its `facts` returns.
 */
export const factReport = (
  rows: readonly ReferralFacts[],
  options: FactReportOptions,
): readonly unknown[] => {
  switch (options.report) {
    case 'funnel':
      return computeReport(rows, options, (cell) => ({
        ...funnelOf(cell),
        backlog: backlogOf(cell, options.now),
      }))
    case 'timings':
      return computeReport(rows, options, timingsOf)
    case 'wait-times':
      return waitTimesReport(rows, options)
    case 'attribution':
      return computeReport(rows, options, funnelOf)
  }
}
