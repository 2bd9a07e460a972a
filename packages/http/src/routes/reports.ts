import {
  type Actor,
  DEFAULT_SUPPRESSION_THRESHOLD,
  type Engine,
  hasPlatformRole,
  Instant,
  InstantFromRfc3339,
  isMemberOf,
  PracticeId,
  REPORT_DIMENSIONS,
  type ReportDimension,
  type ReportFilters,
} from '@referrals/core'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { defaultSchemaRegistry } from '../openapi/io-ts-schema.js'
import { route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'
import { notFound } from './failures.js'
import {
  DEFAULT_GROUP_BY,
  type FactReport,
  factReportCells,
  fairnessCells,
  reportCsv,
} from './report-data.js'

export { reportCsv }

// ---------------------------------------------------------------------------- query codecs

const MAX_GROUP_BY = 3

/** `groupBy=pool,week`: up to three distinct dimensions, comma-separated. */
export const GroupByFromQuery = new t.Type<readonly ReportDimension[], string, unknown>(
  'GroupByFromQuery',
  (u): u is readonly ReportDimension[] =>
    Array.isArray(u) && u.every((d) => (REPORT_DIMENSIONS as readonly unknown[]).includes(d)),
  (u, c) => {
    if (typeof u !== 'string' || u.length > 200) return t.failure(u, c)
    const parts = u === '' ? [] : u.split(',')
    const valid =
      parts.length <= MAX_GROUP_BY &&
      new Set(parts).size === parts.length &&
      parts.every((d) => (REPORT_DIMENSIONS as readonly string[]).includes(d))
    return valid ? t.success(parts as ReportDimension[]) : t.failure(u, c)
  },
  (ds) => ds.join(','),
)

const FilterValue = t.refinement(t.string, (s) => s.length >= 1 && s.length <= 200, 'FilterValue')

defaultSchemaRegistry
  .register('GroupByFromQuery', {
    type: 'string',
    description: `Comma-separated, at most ${MAX_GROUP_BY} distinct of: ${REPORT_DIMENSIONS.join(', ')}`,
    pattern: `^((${REPORT_DIMENSIONS.join('|')})(,(${REPORT_DIMENSIONS.join('|')})){0,${MAX_GROUP_BY - 1}})?$`,
  })
  .register('FilterValue', { minLength: 1, maxLength: 200 })

const filterProps = Object.fromEntries(REPORT_DIMENSIONS.map((d) => [d, FilterValue])) as Record<
  ReportDimension,
  typeof FilterValue
>

/**
 * The query of every report: the period (`from` inclusive, `to` exclusive, on the sending time;
 * for fairness, on the decision time), grouping, one filter per dimension, the practice scope and
 * the format.
 */
export const ReportQuery = t.intersection([
  t.type({ from: InstantFromRfc3339, to: InstantFromRfc3339 }),
  t.partial({
    groupBy: GroupByFromQuery,
    practiceId: PracticeId,
    format: t.keyof({ json: null, csv: null }),
    ...filterProps,
  }),
])
export type ReportQuery = t.TypeOf<typeof ReportQuery>

/** Reports over longer periods are refused (400): a year and a bit. */
export const REPORT_MAX_DAYS = 400
const DAY_MS = 86_400_000

// ---------------------------------------------------------------------------- response codecs

/** A number, or the suppression marker `"< 5"` (a cell from too few referrals), or null (no data). */
const Figure = t.union([t.number, t.string, t.null])
const Distribution = t.type({ n: Figure, p50: Figure, p90: Figure })
const Group = t.record(t.string, t.string)

const FunnelFigures = t.type({
  sent: Figure,
  delivered: Figure,
  accepted: Figure,
  scheduled: Figure,
  completed: Figure,
  deliveries: Figure,
  declines: Figure,
  expiries: Figure,
  noShows: Figure,
  cancelledBeforeAccept: Figure,
  cancelledAfterAccept: Figure,
  cancelledAfterSchedule: Figure,
  returned: Figure,
  unassigned: Figure,
  declineRate: Figure,
  expiryRate: Figure,
})
const FunnelWithBacklog = t.intersection([
  FunnelFigures,
  t.type({ backlog: t.type({ unassigned: Figure, age: Distribution, oldestHours: Figure }) }),
])
const TimingFigures = t.type({
  timeToAccept: Distribution,
  timeToSchedule: Distribution,
  timeToComplete: Distribution,
})
const WaitTimeFigures = t.type({
  referralsWithAppointment: Figure,
  specialists: t.array(t.type({ practiceId: t.string, n: Figure, p50Days: Figure, p90Days: Figure })),
  medianWait: t.type({ min: Figure, max: Figure, range: Figure, mean: Figure, sd: Figure, cv: Figure }),
})

const cellOf = <F extends t.Mixed>(figures: F) =>
  t.type({ group: Group, referrals: Figure, suppressed: t.boolean, figures })

const envelope = <C extends t.Mixed>(cell: C) =>
  t.type({
    report: t.string,
    from: Instant,
    to: Instant,
    groupBy: t.array(t.string),
    practiceId: t.union([PracticeId, t.null]),
    suppressionThreshold: t.number,
    generatedAt: Instant,
    cells: t.array(cell),
  })

export const FunnelReport = envelope(cellOf(FunnelWithBacklog))
export const TimingsReport = envelope(cellOf(TimingFigures))
export const WaitTimesReport = envelope(cellOf(WaitTimeFigures))
export const AttributionReport = envelope(cellOf(FunnelFigures))
export const FairnessReport = envelope(
  t.type({
    group: Group,
    decisions: Figure,
    suppressed: t.boolean,
    maxAbsLag: Figure,
    fteNormalisedSpread: Figure,
    longestRun: Figure,
    routerMaxAbsLag: Figure,
    outsideInvariant: t.union([t.boolean, t.null]),
    members: t.array(
      t.type({
        practiceId: t.string,
        fteMilli: Figure,
        eligibleDecisions: Figure,
        received: Figure,
        entitlement: Figure,
        lag: Figure,
        routerLag: Figure,
      }),
    ),
  }),
)

// ---------------------------------------------------------------------------- access

/**
 * Who sees which figures: with `practiceId`, the referrals that practice sent or holds — for its
 * members, platform admins and auditors (anyone else: 404, the practice is not disclosed); without
 * it, the whole network (pools, regions) — for platform admins and auditors only (403).
 */
export const scopeOf = (actor: Actor, query: Pick<ReportQuery, 'practiceId'>): PracticeId | undefined => {
  const platform = hasPlatformRole(actor, 'admin') || hasPlatformRole(actor, 'auditor')
  if (query.practiceId !== undefined) {
    if (!platform && !isMemberOf(actor, query.practiceId)) throw notFound('Practice')
    return query.practiceId
  }
  if (!platform) {
    throw new ProblemError(
      httpProblem('forbidden', 'Network-wide reports are for platform admins and auditors; pass practiceId.'),
    )
  }
  return undefined
}

const viewerOf = (actor: Actor) => ({
  practiceIds: actor.kind === 'user' ? actor.memberships.map((m) => m.practiceId) : [],
})

export const periodOf = (query: Pick<ReportQuery, 'from' | 'to'>) => {
  const span = Date.parse(query.to) - Date.parse(query.from)
  if (!(span > 0) || span > REPORT_MAX_DAYS * DAY_MS) {
    throw new ProblemError(
      httpProblem('bad_request', `from must precede to, at most ${REPORT_MAX_DAYS} days apart.`),
    )
  }
  return { from: query.from, to: query.to }
}

const filtersOf = (query: ReportQuery): ReportFilters =>
  Object.fromEntries(REPORT_DIMENSIONS.flatMap((d) => (query[d] === undefined ? [] : [[d, query[d]]])))

// ---------------------------------------------------------------------------- CSV

export const wantsCsv = (query: Pick<ReportQuery, 'format'>, request: FastifyRequest): boolean =>
  query.format === 'csv' ||
  (query.format === undefined &&
    /\btext\/csv\b/.test(String(request.headers.accept ?? '')) &&
    !/\bapplication\/json\b/.test(String(request.headers.accept ?? '')))

// ---------------------------------------------------------------------------- routes

export interface ReportRouteOptions {
  readonly engine: Engine
  /** Cells from fewer referrals are suppressed for callers outside the receiving practice (default 5). */
  readonly suppressionThreshold?: number
}

/**
 * `/reports/*`: metrics over the referral-facts projection (and, for fairness, the pools' recorded
 * routing decisions), as JSON or CSV (`format=csv` or `Accept: text/csv`). No PHI: the facts hold
 * none, and small cells are suppressed (`"< 5"`). Definitions: the core README, "Reports".
 */
export const reportRoutes: FastifyPluginAsync<ReportRouteOptions> = async (app, options) => {
  const { engine } = options
  const threshold = options.suppressionThreshold ?? DEFAULT_SUPPRESSION_THRESHOLD

  const answer = async (
    name: FactReport,
    query: ReportQuery,
    request: FastifyRequest,
    reply: FastifyReply,
  ) => {
    const actor = requireActor(request)
    const { from, to } = periodOf(query)
    const practiceId = scopeOf(actor, query)
    const groupBy = query.groupBy ?? DEFAULT_GROUP_BY[name]
    const cells = await factReportCells(engine, name, {
      from,
      to,
      practiceId,
      groupBy,
      filters: filtersOf(query),
      viewer: viewerOf(actor),
      threshold,
    })
    return respond(name, query, request, reply, { from, to, groupBy, practiceId, cells })
  }

  const respond = (
    name: string,
    query: ReportQuery,
    request: FastifyRequest,
    reply: FastifyReply,
    r: {
      from: Instant
      to: Instant
      groupBy: readonly string[]
      practiceId: PracticeId | undefined
      cells: readonly unknown[]
    },
  ) => {
    if (wantsCsv(query, request)) {
      reply.header('content-type', 'text/csv; charset=utf-8')
      reply.header('content-disposition', `attachment; filename="${name}.csv"`)
      return reply.send(reportCsv(r.cells))
    }
    return {
      report: name,
      from: r.from,
      to: r.to,
      groupBy: [...r.groupBy],
      practiceId: r.practiceId ?? null,
      suppressionThreshold: threshold,
      generatedAt: engine.clock.now(),
      cells: [...r.cells],
    }
  }

  const common = {
    method: 'GET' as const,
    tags: ['reports'] as const,
    query: ReportQuery,
    responseDescription:
      'The report as JSON; as text/csv (one row per cell, or per specialist / member) with format=csv or Accept: text/csv',
  }
  const scopeText =
    'With `practiceId`: the referrals that practice sent or holds (its members, admins, auditors); without: the whole network (admins, auditors). Cells from fewer than the suppression threshold (default 5) of referrals read "< 5" unless the caller belongs to the receiving practice of all of them.'

  route(app, {
    ...common,
    url: '/reports/funnel',
    operationId: 'getFunnelReport',
    summary:
      'Referral funnel: sent → delivered → accepted → scheduled → completed, drop-outs and the backlog',
    description: `Referrals sent in [from, to), grouped by \`groupBy\` (default none). Declines, expiries and no-shows are counted per referral; cancellations by the stage they happened at; \`backlog\` is the intake queue now, with its age in hours. ${scopeText}`,
    response: FunnelReport,
    handler: async ({ query }, request, reply) => answer('funnel', query, request, reply) as never,
  })

  route(app, {
    ...common,
    url: '/reports/timings',
    operationId: 'getTimingsReport',
    summary: 'Time to accept, to schedule and to complete (hours, p50 and p90)',
    description: `Nearest-rank percentiles of the hours from sending to acceptance, to the booking of the first appointment and to completion, over referrals sent in [from, to) that reached the milestone. ${scopeText}`,
    response: TimingsReport,
    handler: async ({ query }, request, reply) => answer('timings', query, request, reply) as never,
  })

  route(app, {
    ...common,
    url: '/reports/wait-times',
    operationId: 'getWaitTimesReport',
    summary: 'Waiting time per specialist (days to the appointment) and its dispersion across the pool',
    description: `Grouped by pool by default. Per receiving specialist: p50 and p90 days from sending to the booked appointment; per cell: min, max, range, mean, standard deviation and coefficient of variation of the specialists' median waits. A specialist row from fewer referrals than the threshold is suppressed too, except for its own members. ${scopeText}`,
    response: WaitTimesReport,
    handler: async ({ query }, request, reply) => answer('wait-times', query, request, reply) as never,
  })

  route(app, {
    ...common,
    url: '/reports/attribution',
    operationId: 'getAttributionReport',
    summary:
      'Referral funnel by source attribution (channel, campaign, location, service line, referring practice)',
    description: `The funnel of referrals sent in [from, to), grouped by \`groupBy\` (default \`channel\`); referrals sent without attribution are grouped under "(none)". ${scopeText}`,
    response: AttributionReport,
    handler: async ({ query }, request, reply) => answer('attribution', query, request, reply) as never,
  })

  route(app, {
    ...common,
    url: '/reports/fairness',
    operationId: 'getFairnessReport',
    summary: 'Routing fairness per pool and ISO week, from the recorded routing decisions',
    description:
      'Decisions taken in [from, to). Per member: decisions it was a candidate of, referrals received, its FTE entitlement over those decisions (Σ fte / Σ candidates’ fte, so a paused, excluded or declining specialist is not counted as behind) and the lag; per pool-week: max |lag| after any decision, FTE-normalised spread (max − min of received / FTE), the longest run to one member. Beside these week-local figures, the router’s own lag λ (replayed over the pool’s whole history: FTE share since the last placement minus referrals received, declined offers refunded) per member after the week (`routerLag`, null when not active) and its largest |λ| after any decision of the week (`routerMaxAbsLag`); `outsideInvariant` is whether the router broke its bound (−1 < λ < 1 in a period without declines, exclusions or direct referrals; otherwise λ < 2 + refunded slots not yet used, λ > −2(n − 1)). Filter with `pool`. With `practiceId`: only pools the practice was a candidate in, and only its own member row. A pool-week of fewer decisions than the threshold is suppressed (its own row excepted).',
    response: FairnessReport,
    handler: async ({ query }, request, reply) => {
      const actor = requireActor(request)
      const { from, to } = periodOf(query)
      const practiceId = scopeOf(actor, query)
      const cells = await fairnessCells(engine, {
        from,
        to,
        practiceId,
        pool: query.pool,
        week: query.week,
        viewer: viewerOf(actor),
        threshold,
      })
      return respond('fairness', query, request, reply, {
        from,
        to,
        groupBy: ['pool', 'week'],
        practiceId,
        cells,
      }) as never
    },
  })
}
