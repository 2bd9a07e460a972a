import {
  type Engine,
  type FactReport,
  factReport,
  type Instant,
  type PracticeId,
  type ReportDimension,
  type ReportFilters,
  readPoolHistory,
  suppressedFigure,
  suppressFigures,
  weeklyFairness,
} from '@referrals/core'
import { csvCell } from './csv.js'

// The figures of every report, shared by the HTTP routes (routes/reports.ts) and the CLI
// (`referrals report`, `referrals fairness-audit`): who may ask is decided by the caller; what is
// computed, and what is suppressed for a viewer, is decided here.

export { FACT_REPORTS, type FactReport } from '@referrals/core'

/** The grouping of each report when none is asked for. */
export const DEFAULT_GROUP_BY: Record<FactReport, readonly ReportDimension[]> = {
  funnel: [],
  timings: [],
  'wait-times': ['pool'],
  attribution: ['channel'],
}

/** The practices the viewer belongs to: their own cells are never suppressed. */
export interface ReportViewer {
  readonly practiceIds: readonly PracticeId[]
}

export interface ReportScope {
  readonly from: Instant
  readonly to: Instant
  /** Only the referrals this practice sent or holds; undefined: the whole network. */
  readonly practiceId?: PracticeId | undefined
  readonly viewer: ReportViewer
  readonly threshold: number
}

/** The cells of one fact report over referrals sent in [from, to). */
export const factReportCells = async (
  engine: Engine,
  name: FactReport,
  scope: ReportScope & { readonly groupBy: readonly ReportDimension[]; readonly filters: ReportFilters },
): Promise<readonly unknown[]> => {
  const q = {
    sentFrom: scope.from,
    sentTo: scope.to,
    ...(scope.practiceId === undefined ? {} : { practiceId: scope.practiceId }),
  }
  const options = {
    report: name,
    now: engine.clock.now(),
    groupBy: scope.groupBy,
    filters: scope.filters,
    viewer: scope.viewer,
    threshold: scope.threshold,
  }
  // Aggregated where the rows live when the read model can (PostgreSQL: in SQL), else in the process.
  const { referralFacts } = engine
  if (referralFacts.report !== undefined) return referralFacts.report(q, options)
  return factReport(await referralFacts.facts(q), options)
}

/** The fairness cells (one per pool and ISO week) of the routing decisions taken in [from, to). */
export const fairnessCells = async (
  engine: Engine,
  scope: ReportScope & { readonly pool?: string | undefined; readonly week?: string | undefined },
) => {
  const { practiceId, threshold } = scope
  const marker = suppressedFigure(threshold)
  const weeks = weeklyFairness(
    await readPoolHistory(engine.store, { from: scope.from, to: scope.to }, { withEarlier: true }),
  )
  return weeks
    .filter((w) => scope.pool === undefined || w.pool === scope.pool)
    .filter((w) => scope.week === undefined || w.week === scope.week)
    .filter((w) => practiceId === undefined || w.members.some((m) => m.practiceId === practiceId))
    .map((w) => {
      const members =
        practiceId === undefined ? w.members : w.members.filter((m) => m.practiceId === practiceId)
      const suppressed = w.decisions < threshold
      const own = (m: (typeof members)[number]) => scope.viewer.practiceIds.includes(m.practiceId)
      return {
        group: { pool: w.pool, week: w.week },
        decisions: suppressed ? marker : w.decisions,
        suppressed,
        maxAbsLag: suppressed ? marker : w.maxAbsLag,
        fteNormalisedSpread: suppressed ? marker : w.fteNormalisedSpread,
        longestRun: suppressed ? marker : w.longestRun,
        routerMaxAbsLag: suppressed ? marker : w.routerMaxAbsLag,
        outsideInvariant: suppressed ? null : w.outsideInvariant,
        members: members.map((m) => (suppressed && !own(m) ? suppressFigures(m, marker) : m)),
      }
    })
}

// ---------------------------------------------------------------------------- flat rows and CSV

export type Flat = Record<string, string | number | boolean | null>

/** One CSV row per leaf array element (a cell's specialists, a week's members), columns dot-joined. */
export const flattenCell = (value: unknown, prefix = ''): Flat[] => {
  let rows: Flat[] = [{}]
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const name = `${prefix}${key}`
    if (Array.isArray(v)) {
      const expanded = v.length === 0 ? [{}] : v.flatMap((e) => flattenCell(e, `${name}.`))
      rows = rows.flatMap((r) => expanded.map((e) => ({ ...r, ...e })))
    } else if (v !== null && typeof v === 'object') {
      const nested = flattenCell(v, `${name}.`)
      rows = rows.flatMap((r) => nested.map((e) => ({ ...r, ...e })))
    } else {
      rows = rows.map((r) => ({ ...r, [name]: v as Flat[string] }))
    }
  }
  return rows
}

/** The cells as a header and rows of strings (empty for a missing or null figure). */
export const reportRows = (cells: readonly unknown[]): { header: string[]; rows: string[][] } => {
  const flat = cells.flatMap((c) => flattenCell(c))
  const header: string[] = []
  for (const r of flat) for (const k of Object.keys(r)) if (!header.includes(k)) header.push(k)
  const rows = flat.map((r) => header.map((k) => (r[k] === undefined || r[k] === null ? '' : String(r[k]))))
  return { header, rows }
}

export const reportCsv = (cells: readonly unknown[]): string => {
  const { header, rows } = reportRows(cells)
  const lines = [header, ...rows].map((r) => r.map(csvCell).join(','))
  return `${lines.join('\r\n')}\r\n`
}

/** The cells as a plain-text table, columns padded to their widest value (numbers right-aligned). */
export const reportTable = (cells: readonly unknown[]): string => {
  const { header, rows } = reportRows(cells)
  if (rows.length === 0) return '(no data)\n'
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
  const numeric = header.map((_, i) =>
    rows.every((r) => r[i] === '' || /^-?\d+(\.\d+)?$/.test(r[i] as string)),
  )
  const line = (r: readonly string[]) =>
    r
      .map((v, i) => (numeric[i] ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd()
  return `${[line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')}\n`
}
