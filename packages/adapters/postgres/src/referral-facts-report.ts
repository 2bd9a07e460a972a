import {
  compareCodeUnits,
  DEFAULT_SUPPRESSION_THRESHOLD,
  type FactReportOptions,
  medianWaitOf,
  NO_VALUE,
  type ReferralFactsQuery,
  type ReportDimension,
  reportCell,
  type SpecialistWait,
  suppressedFigure,
  suppressSmallSpecialists,
} from '@referrals/core'
import type pg from 'pg'
import { POOL_SQL } from './referral-facts-durations.js'
import { ROLLUP_COUNTS } from './referral-facts-rollup.js'

// The fact reports aggregated in SQL over `<schema>.referral_facts`: one statement per report
// (GROUP BY the dimensions, counts with FILTER, nearest-rank percentiles with `percentile_disc`),
// so a request reads a few rows per cell instead of every facts row of the period. The reference
// is the core's `factReport` over the same rows (referral-facts-report.int.test.ts compares them
// over random rows). What stays in the process is per cell and small: group order, rates,
// the dispersion of the specialists' medians, and suppression — with the core's own functions.

/** A dimension's value as SQL, exactly as `dimensionValue` computes it (NO_VALUE for null). */
const dimensionSql = (d: ReportDimension): string => {
  const none = `'${NO_VALUE}'`
  switch (d) {
    case 'region':
      return 'region_id'
    case 'specialty':
      return 'specialty_id'
    case 'category':
      return 'category_id'
    case 'subcategory':
      return `coalesce(subcategory_id, ${none})`
    case 'pool':
      return POOL_SQL
    case 'urgency':
      return 'urgency'
    case 'route':
      return 'route'
    case 'senderPractice':
      return 'sender_practice_id'
    case 'receivingPractice':
      return `coalesce(receiving_practice_id, ${none})`
    case 'week':
      // The Monday (UTC) of the ISO week of the sending time, like `isoWeekOf`.
      return `to_char(date_trunc('week', sent_at::timestamptz AT TIME ZONE 'UTC'), 'YYYY-MM-DD')`
    case 'channel':
      return `coalesce(channel, ${none})`
    case 'campaign':
      return `coalesce(campaign, ${none})`
    case 'location':
      return `coalesce(location, ${none})`
    case 'serviceLine':
      return `coalesce(service_line, ${none})`
    case 'referringPractice':
      return `coalesce(referring_practice_id, ${none})`
  }
}

/**
 * Epoch milliseconds of an ISO-8601 instant as SQL, like `millisOf` (for the millisecond instants
 * the events carry: `date_part` is within 10⁻³ ms of it, `floor(… + 0.0005)` makes it exact).
 */
const epochMs = (instant: string) => `floor(date_part('epoch', ${instant}::timestamptz) * 1000 + 0.0005)`
/**
 * The same of an instant column: the stored generated `<column>_ms` (migration 4, computed once per
 * row write with the expression above), so a request parses no text.
 */
const ms = (column: string) => `${column}_ms::float8`
/** (to − from) in `unit` milliseconds as a double: both integers, so the same double as the core's. */
const between = (from: string, to: string, unit: number) => `((${to} - ${from}) / ${unit})`
const HOURS = 3_600_000
const DAYS = 86_400_000

/** p50 and p90 from one sort: `percentile_disc` over an array of fractions gives an array. */
const percentilesSql = (value: string, where: string) =>
  `percentile_disc(ARRAY[0.5, 0.9]::float8[]) WITHIN GROUP (ORDER BY ${value}) FILTER (WHERE ${where})`

const distributionSql = (name: string, value: string, where: string) => `
  count(*) FILTER (WHERE ${where})::int AS ${name}_n,
  ${percentilesSql(value, where)} AS ${name}_p`

const FUNNEL_SQL = `
  count(first_delivered_at)::int AS delivered,
  count(accepted_at)::int AS accepted,
  count(scheduled_at)::int AS scheduled,
  count(completed_at)::int AS completed,
  sum(delivery_count)::float8 AS deliveries,
  sum(decline_count)::float8 AS declines,
  sum(expiry_count)::float8 AS expiries,
  sum(no_show_count)::float8 AS no_shows,
  count(*) FILTER (WHERE cancelled_at IS NOT NULL AND scheduled_at IS NULL AND accepted_at IS NULL)::int AS cancelled_before_accept,
  count(*) FILTER (WHERE cancelled_at IS NOT NULL AND scheduled_at IS NULL AND accepted_at IS NOT NULL)::int AS cancelled_after_accept,
  count(*) FILTER (WHERE cancelled_at IS NOT NULL AND scheduled_at IS NOT NULL)::int AS cancelled_after_schedule,
  count(returned_at)::int AS returned,
  count(*) FILTER (WHERE status = 'unassigned')::int AS unassigned`

const BACKLOG_WHERE = `status = 'unassigned' AND unassigned_since IS NOT NULL`

type Row = Record<string, string | number | boolean | null | unknown[]>

const num = (v: Row[string] | undefined): number => Number(v)
const orNull = (v: Row[string] | undefined): number | null =>
  v === null || v === undefined ? null : Number(v)
const orNullPer = (v: number | null, unit: number): number | null => (v === null ? null : v / unit)
const ratio = (a: number, b: number): number | null => (b === 0 ? null : a / b)
const percentiles = (v: unknown): [number | null, number | null] =>
  Array.isArray(v) ? [orNull(v[0]), orNull(v[1])] : [null, null]
/** `unit`: the percentiles are in milliseconds (the durations table), to divide by it. */
const distribution = (r: Row, name: string, unit = 1) => {
  const [p50, p90] = percentiles(r[`${name}_p`])
  return {
    n: num(r[`${name}_n`]),
    p50: p50 === null ? null : p50 / unit,
    p90: p90 === null ? null : p90 / unit,
  }
}

const funnelOfRow = (r: Row) => {
  const deliveries = num(r.deliveries)
  const declines = num(r.declines)
  const expiries = num(r.expiries)
  return {
    sent: num(r.n),
    delivered: num(r.delivered),
    accepted: num(r.accepted),
    scheduled: num(r.scheduled),
    completed: num(r.completed),
    deliveries,
    declines,
    expiries,
    noShows: num(r.no_shows),
    cancelledBeforeAccept: num(r.cancelled_before_accept),
    cancelledAfterAccept: num(r.cancelled_after_accept),
    cancelledAfterSchedule: num(r.cancelled_after_schedule),
    returned: num(r.returned),
    unassigned: num(r.unassigned),
    declineRate: ratio(declines, deliveries),
    expiryRate: ratio(expiries, deliveries),
  }
}

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const monthStart = (month: string) => `${month}-01T00:00:00.000Z`
const nextMonth = (month: string): string | undefined => {
  const y = Number(month.slice(0, 4))
  const m = Number(month.slice(5, 7))
  if (m < 12) return `${month.slice(0, 4)}-${String(m + 1).padStart(2, '0')}`
  return y >= 9999 ? undefined : `${String(y + 1).padStart(4, '0')}-01`
}

/**
 * The whole months of `[from, to)` (`YYYY-MM`, `lo` ≤ month < `hi`; undefined: unbounded), or null
 * when there is none or the bounds are not canonical instants (`Instant`, what the routes pass:
 * then text order is time order, and a month is whole when its first and last millisecond are in).
 */
export const wholeMonths = (
  from: string | undefined,
  to: string | undefined,
): { readonly lo: string | undefined; readonly hi: string | undefined } | null => {
  if ((from !== undefined && !INSTANT.test(from)) || (to !== undefined && !INSTANT.test(to))) return null
  const lo =
    from === undefined
      ? undefined
      : from === monthStart(from.slice(0, 7))
        ? from.slice(0, 7)
        : nextMonth(from.slice(0, 7))
  if (from !== undefined && lo === undefined) return null
  const hi = to?.slice(0, 7)
  if (lo !== undefined && hi !== undefined && lo >= hi) return null
  return { lo, hi }
}

/** The dimensions the durations table holds (referral-facts-durations.ts), as its SQL. */
const DURATIONS_DIMENSIONS: Partial<Record<ReportDimension, string>> = {
  pool: 'pool',
  senderPractice: dimensionSql('senderPractice'),
  receivingPractice: dimensionSql('receivingPractice'),
}

/**
 * The cells of one fact report over the rows `q` selects, aggregated in SQL. With `rollup` (the
 * `referral_facts_monthly` table, in step with `table`), the funnel and attribution read the whole
 * months of the period from it and the rest from `table` (see `rollupCounts`). With `durations`
 * (the `referral_facts_durations` table, in step with `table`), timings and wait-times read it
 * instead of `table` when they group and filter only by dimensions it holds.
 */
export const sqlFactReport = async (
  db: pg.Pool | pg.PoolClient,
  table: string,
  q: ReferralFactsQuery,
  options: FactReportOptions,
  rollup?: string,
  durations?: string,
): Promise<readonly unknown[]> => {
  const narrow =
    durations !== undefined &&
    (options.report === 'timings' || options.report === 'wait-times') &&
    options.groupBy.every((d) => DURATIONS_DIMENSIONS[d] !== undefined) &&
    Object.entries(options.filters ?? {}).every(
      ([d, v]) => v === undefined || DURATIONS_DIMENSIONS[d as ReportDimension] !== undefined,
    )
  const dim = (d: ReportDimension) => (narrow ? (DURATIONS_DIMENSIONS[d] as string) : dimensionSql(d))
  const threshold = options.threshold ?? DEFAULT_SUPPRESSION_THRESHOLD
  const marker = suppressedFigure(threshold)
  const by = options.groupBy
  const params: unknown[] = []
  const p = (v: unknown) => {
    params.push(v)
    return `$${params.length}`
  }
  const where: string[] = []
  if (q.sentFrom !== undefined) where.push(`sent_at COLLATE "C" >= ${p(q.sentFrom)}`)
  if (q.sentTo !== undefined) where.push(`sent_at COLLATE "C" < ${p(q.sentTo)}`)
  if (q.practiceId !== undefined) {
    const id = p(q.practiceId)
    where.push(`(sender_practice_id = ${id} OR receiving_practice_id = ${id})`)
  }
  for (const [d, v] of Object.entries(options.filters ?? {}) as [ReportDimension, string | undefined][]) {
    if (v !== undefined) where.push(`${dim(d)} = ${p(v)}`)
  }
  const viewer = p(options.viewer.practiceIds)
  const groups = by.map((d, i) => `${dim(d)} AS g${i}`)
  const groupKeys = by.map(dim)
  // Is every row of the cell held by one of the viewer's practices (its cells are never hidden)?
  const common = `count(*)::int AS n,
  coalesce(bool_and(coalesce(receiving_practice_id = ANY(${viewer}::text[]), false)), false) AS own`
  const from = `FROM ${narrow ? durations : table} ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}`

  const keyOf = (r: Row) => Object.fromEntries(by.map((d, i) => [d, String(r[`g${i}`])]))
  const ordered = <T extends { readonly id: string }>(cells: T[]) =>
    cells.sort((a, b) => compareCodeUnits(a.id, b.id))
  const idOf = (r: Row) => JSON.stringify(by.map((_, i) => String(r[`g${i}`])))
  const suppressed = (r: Row) => num(r.n) < threshold && r.own !== true

  const cellsOf = (resultRows: Row[]) => {
    const rows = ordered(resultRows.filter((row) => num(row.n) > 0).map((row) => ({ id: idOf(row), row })))
    return rows.map(({ row }) => {
      const figures =
        options.report === 'timings'
          ? {
              timeToAccept: distribution(row, 'accept', narrow ? HOURS : 1),
              timeToSchedule: distribution(row, 'schedule', narrow ? HOURS : 1),
              timeToComplete: distribution(row, 'complete', narrow ? HOURS : 1),
            }
          : options.report === 'funnel'
            ? {
                ...funnelOfRow(row),
                backlog: {
                  unassigned: num(row.age_n),
                  age: distribution(row, 'age'),
                  oldestHours: orNull(row.oldest),
                },
              }
            : funnelOfRow(row)
      return reportCell(keyOf(row), num(row.n), suppressed(row), figures, marker)
    })
  }

  if (options.report === 'wait-times') {
    // One statement, one grouping: the cell per receiving practice (null included). A cell's
    // count and "held by the viewer" are the sum and the AND of its practices' groups, so the
    // rows are sorted once (a second grouping set of the cell alone cost a second sort of every
    // row, for percentiles this report never shows). Only referrals with a booked appointment and
    // a holder count for a specialist, as in `waitTimesOf`.
    // (The durations table's wait_ms is null without a holder: the same rows, in milliseconds.)
    const hasWait = narrow
      ? 'wait_ms IS NOT NULL'
      : 'appointment_at IS NOT NULL AND receiving_practice_id IS NOT NULL'
    const days = narrow ? 'wait_ms' : between(ms('sent_at'), ms('appointment_at'), DAYS)
    const unit = narrow ? DAYS : 1
    const r = await db.query<Row>(
      `SELECT ${[...groups, 'receiving_practice_id AS practice'].join(', ')},
        ${common},
        count(*) FILTER (WHERE ${hasWait})::int AS waits,
        ${percentilesSql(days, hasWait)} AS p
       ${from}
       GROUP BY ${[...groupKeys, 'receiving_practice_id'].join(', ')}`,
      params,
    )
    const cells = new Map<
      string,
      { id: string; row: Row; n: number; own: boolean; specialists: SpecialistWait[] }
    >()
    for (const row of r.rows) {
      const id = idOf(row)
      let cell = cells.get(id)
      if (cell === undefined) {
        cell = { id, row, n: 0, own: true, specialists: [] }
        cells.set(id, cell)
      }
      cell.n += num(row.n)
      cell.own = cell.own && row.own === true
      if (row.practice !== null && num(row.waits) > 0) {
        cell.specialists.push({
          practiceId: String(row.practice) as SpecialistWait['practiceId'],
          n: num(row.waits),
          p50Days: orNullPer(percentiles(row.p)[0], unit),
          p90Days: orNullPer(percentiles(row.p)[1], unit),
        })
      }
    }
    return ordered([...cells.values()].filter((c) => c.n > 0)).map(({ row, n, own, specialists: ss }) => {
      ss.sort((a, b) => compareCodeUnits(a.practiceId, b.practiceId))
      const figures = {
        referralsWithAppointment: ss.reduce((sum, s) => sum + s.n, 0),
        specialists: ss,
        medianWait: medianWaitOf(ss),
      }
      return suppressSmallSpecialists(
        reportCell(keyOf(row), n, n < threshold && !own, figures, marker),
        options.viewer,
        threshold,
      )
    })
  }

  const months =
    rollup !== undefined &&
    (options.report === 'funnel' || options.report === 'attribution') &&
    !by.includes('week') &&
    options.filters?.week === undefined
      ? wholeMonths(q.sentFrom, q.sentTo)
      : null
  if (rollup !== undefined && months !== null) {
    // Three sources of per-row (or per-key) counts under the same column names, summed per cell:
    // the rollup's keys of the whole months, the facts rows of the partial months at either end,
    // and (funnel) the unassigned facts rows of the whole months for the backlog's ages. The cell's
    // figures are the sums — the same as counting the facts rows (ROLLUP_COUNTS defines both).
    const lo = months.lo === undefined ? undefined : monthStart(months.lo)
    const hi = months.hi === undefined ? undefined : monthStart(months.hi)
    const inWhole = [
      ...(lo === undefined ? [] : [`sent_at COLLATE "C" >= ${p(lo)}`]),
      ...(hi === undefined ? [] : [`sent_at COLLATE "C" < ${p(hi)}`]),
    ]
    const keyCols =
      'sender_practice_id, receiving_practice_id, region_id, specialty_id, category_id, subcategory_id, urgency, route, channel, campaign, location, service_line, referring_practice_id'
    const counts = ROLLUP_COUNTS.map(([c]) => c).join(', ')
    const age =
      options.report === 'funnel'
        ? between(ms('unassigned_since'), epochMs(p(options.now)), HOURS)
        : 'NULL::float8'
    const factsWhere = (extra: string[]) => {
      const all = [...where, ...extra]
      return all.length === 0 ? '' : `WHERE ${all.join(' AND ')}`
    }
    const rollupWhere = [
      'n > 0',
      ...(months.lo === undefined ? [] : [`month >= ${p(months.lo)}`]),
      ...(months.hi === undefined ? [] : [`month < ${p(months.hi)}`]),
      ...where.filter((w) => !w.startsWith('sent_at ')),
    ]
    const sources = [
      `SELECT ${keyCols}, ${counts}, NULL::float8 AS age FROM ${rollup} WHERE ${rollupWhere.join(' AND ')}`,
      ...(inWhole.length === 0
        ? []
        : [
            `SELECT ${keyCols}, ${ROLLUP_COUNTS.map(([c, sql]) => `${sql} AS ${c}`).join(', ')},
               CASE WHEN ${BACKLOG_WHERE} THEN ${age} END AS age
             FROM ${table} ${factsWhere([`NOT (${inWhole.join(' AND ')})`])}`,
          ]),
      ...(options.report === 'funnel'
        ? [
            `SELECT ${keyCols}, ${ROLLUP_COUNTS.map(([c]) => `0 AS ${c}`).join(', ')}, ${age} AS age
             FROM ${table} ${factsWhere([...inWhole, BACKLOG_WHERE])}`,
          ]
        : []),
    ]
    const sums = ROLLUP_COUNTS.filter(([c]) => c !== 'n')
      .map(([c, , t]) => `sum(${c})::${t === 'bigint' ? 'float8' : 'int'} AS ${c}`)
      .join(', ')
    const backlog =
      options.report === 'funnel'
        ? `, count(age)::int AS age_n, ${percentilesSql('age', 'age IS NOT NULL')} AS age_p, max(age) AS oldest`
        : ''
    const r = await db.query<Row>(
      `SELECT ${[
        ...groups,
        `coalesce(sum(n), 0)::int AS n,
        coalesce(bool_and(coalesce(receiving_practice_id = ANY(${viewer}::text[]), false)), false) AS own`,
      ].join(', ')},
        ${sums}${backlog}
       FROM (${sources.join('\n UNION ALL\n')}) AS src
       ${by.length === 0 ? '' : `GROUP BY ${groupKeys.join(', ')}`}`,
      params,
    )
    return cellsOf(r.rows)
  }

  const figuresSql =
    options.report === 'timings' && narrow
      ? [
          distributionSql('accept', 'accept_ms', 'accept_ms IS NOT NULL'),
          distributionSql('schedule', 'schedule_ms', 'schedule_ms IS NOT NULL'),
          distributionSql('complete', 'complete_ms', 'complete_ms IS NOT NULL'),
        ].join(',')
      : options.report === 'timings'
        ? [
            distributionSql(
              'accept',
              between(ms('sent_at'), ms('accepted_at'), HOURS),
              'accepted_at IS NOT NULL',
            ),
            distributionSql(
              'schedule',
              between(ms('sent_at'), ms('scheduled_at'), HOURS),
              'scheduled_at IS NOT NULL',
            ),
            distributionSql(
              'complete',
              between(ms('sent_at'), ms('completed_at'), HOURS),
              'completed_at IS NOT NULL',
            ),
          ].join(',')
        : options.report === 'funnel'
          ? `${FUNNEL_SQL}, ${distributionSql('age', between(ms('unassigned_since'), epochMs(p(options.now)), HOURS), BACKLOG_WHERE)},
           max(${between(ms('unassigned_since'), epochMs(p(options.now)), HOURS)}) FILTER (WHERE ${BACKLOG_WHERE}) AS oldest`
          : FUNNEL_SQL
  const r = await db.query<Row>(
    `SELECT ${[...groups, common, figuresSql].join(', ')}
     ${from}
     ${by.length === 0 ? '' : `GROUP BY ${groupKeys.join(', ')}`}`,
    params,
  )
  return cellsOf(r.rows)
}
