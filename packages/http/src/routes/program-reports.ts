import {
  DEFAULT_SUPPRESSION_THRESHOLD,
  type Engine,
  type ExistingProgram,
  type FunnelStages,
  Instant,
  InstantFromRfc3339,
  isMemberOf,
  loadAggregate,
  PracticeId,
  ProgramId,
  programAggregate,
  programStreamId,
  projectFunnel,
  suppressedFigure,
} from '@referrals/core'
import type { FastifyPluginAsync } from 'fastify'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { route } from '../openapi/route.js'
import { must, notFound } from './failures.js'
import { intakeEventsOfPrograms, programsOfPractice } from './program-reads.js'
import { cohortOpenedWithin, incentiveDecisionsView, programFunnel } from './program-views.js'
import { reportCsv } from './report-data.js'
import { periodOf, scopeOf, wantsCsv } from './reports.js'

/**
 * `GET /reports/programs`: the referral-program funnel of a period as a report (issue 15, "visible
 * in the reports"), per program, campaign and link, with the incentive awards and refusals. The
 * figures come from the same funnel as `GET /programs/{programId}/funnel` (`projectFunnel` and
 * `programFunnel`) and the same decisions as `/incentives`, over one cohort: the intakes whose link
 * was opened in [from, to). No PHI, no per-person ids; cells of fewer intakes than the threshold
 * are suppressed except for members of the program's practice.
 */

export const ProgramReportQuery = t.intersection([
  t.type({ from: InstantFromRfc3339, to: InstantFromRfc3339 }),
  t.partial({
    practiceId: PracticeId,
    programId: ProgramId,
    format: t.keyof({ json: null, csv: null }),
  }),
])
export type ProgramReportQuery = t.TypeOf<typeof ProgramReportQuery>

/** A count, or the suppression marker `"< 5"`. */
const Figure = t.union([t.number, t.string])

const ProgramReportFigures = t.type({
  opened: Figure,
  submitted: Figure,
  referralSent: Figure,
  scheduled: Figure,
  completed: Figure,
  noShows: Figure,
  incentivesAwarded: Figure,
  incentivesRefused: Figure,
})
type Figures = { readonly [K in keyof t.TypeOf<typeof ProgramReportFigures>]: number }

const ProgramReportCell = t.type({
  /** `program`: all its links; `campaign`: its links of one campaign ("(none)": without); `link`: one link. */
  level: t.keyof({ program: null, campaign: null, link: null }),
  group: t.record(t.string, t.string),
  /** Intakes of the cohort in this cell (those that opened the link in the period). */
  intakes: Figure,
  suppressed: t.boolean,
  figures: ProgramReportFigures,
})

export const ProgramReport = t.type({
  report: t.literal('programs'),
  from: Instant,
  to: Instant,
  practiceId: t.union([PracticeId, t.null]),
  programId: t.union([ProgramId, t.null]),
  suppressionThreshold: t.number,
  generatedAt: Instant,
  cells: t.array(ProgramReportCell),
})
type Cell = t.TypeOf<typeof ProgramReportCell>

const NO_CAMPAIGN = '(none)'

const figuresOf = (stages: FunnelStages, awarded: number, refused: number): Figures => ({
  opened: stages.opened.count,
  submitted: stages.submitted.count,
  referralSent: stages.referralSent.count,
  scheduled: stages.scheduled.count,
  completed: stages.completed.count,
  noShows: stages.noShow.count,
  incentivesAwarded: awarded,
  incentivesRefused: refused,
})

const sum = (rows: readonly Figures[]): Figures => {
  const out = {
    opened: 0,
    submitted: 0,
    referralSent: 0,
    scheduled: 0,
    completed: 0,
    noShows: 0,
    incentivesAwarded: 0,
    incentivesRefused: 0,
  }
  for (const r of rows) for (const k of Object.keys(out) as (keyof Figures)[]) out[k] += r[k]
  return out
}

/**
 * The cells of one program over one cohort: the program, each campaign (in the order of its first
 * link), each link (in creation order, with zeros for links nobody opened in the period).
 */
export const programReportCells = (
  program: ExistingProgram,
  cohort: ReturnType<typeof cohortOpenedWithin>,
  suppress: (intakes: number) => string | null,
): Cell[] => {
  const funnel = programFunnel(program, projectFunnel(cohort.intakeEvents))
  const decisions = incentiveDecisionsView(program, cohort.programEvents)
  const links = funnel.links.map((l) => {
    const d = decisions.links.find((x) => x.linkId === l.linkId)
    return {
      linkId: l.linkId,
      campaign: l.attribution.campaign ?? NO_CAMPAIGN,
      channel: l.attribution.channel ?? NO_CAMPAIGN,
      figures: figuresOf(l.stages, d?.awarded ?? 0, d?.refused ?? 0),
    }
  })
  const cell = (level: Cell['level'], group: Record<string, string>, figures: Figures): Cell => {
    const marker = suppress(figures.opened)
    return {
      level,
      group,
      intakes: marker ?? figures.opened,
      suppressed: marker !== null,
      figures:
        marker === null
          ? figures
          : (Object.fromEntries(Object.keys(figures).map((k) => [k, marker])) as Cell['figures']),
    }
  }
  const programId = program.programId
  const campaigns = [...new Set(links.map((l) => l.campaign))]
  return [
    cell('program', { programId }, sum(links.map((l) => l.figures))),
    ...campaigns.map((campaign) =>
      cell(
        'campaign',
        { programId, campaign },
        sum(links.filter((l) => l.campaign === campaign).map((l) => l.figures)),
      ),
    ),
    ...links.map((l) =>
      cell('link', { programId, campaign: l.campaign, linkId: l.linkId, channel: l.channel }, l.figures),
    ),
  ]
}

export interface ProgramReportRouteOptions {
  readonly engine: Engine
  /** Cells of fewer intakes are suppressed for callers outside the program's practice (default 5). */
  readonly suppressionThreshold?: number
}

export const programReportRoutes: FastifyPluginAsync<ProgramReportRouteOptions> = async (app, options) => {
  const { engine } = options
  const threshold = options.suppressionThreshold ?? DEFAULT_SUPPRESSION_THRESHOLD
  const marker = suppressedFigure(threshold)

  route(app, {
    method: 'GET',
    url: '/reports/programs',
    operationId: 'getProgramReport',
    tags: ['reports'],
    query: ProgramReportQuery,
    summary:
      'Referral programs: link opened → intake submitted → referral sent → scheduled → completed, no-shows and incentive decisions, per program, campaign and link',
    description:
      'The cohort of intakes whose link was opened in [from, to), each followed through every later stage (whenever it happened), with the incentive awards and refusals decided for them. One cell per program, per campaign of a program (links without one under "(none)") and per link (links nobody opened in the period read 0). The figures are those of `GET /programs/{programId}/funnel` and `/incentives` over that cohort. With `practiceId`: that practice’s programs (its members, admins, auditors); without: every program (admins, auditors); `programId` narrows to one. A cell of fewer intakes than the suppression threshold (default 5) reads "< 5" unless the caller belongs to the program’s practice. No PHI and no per-person ids.',
    response: ProgramReport,
    responseDescription:
      'The report as JSON; as text/csv (one row per cell) with format=csv or Accept: text/csv',
    handler: async ({ query }, request, reply) => {
      const actor = requireActor(request)
      const { from, to } = periodOf(query)
      const practiceId = scopeOf(actor, query)
      const ids = must(await programsOfPractice(engine.store, practiceId))
      const programIds = query.programId === undefined ? ids : ids.filter((id) => id === query.programId)
      if (query.programId !== undefined && programIds.length === 0) throw notFound('Program')
      const intakes = must(await intakeEventsOfPrograms(engine.store, programIds))
      const cells: Cell[] = []
      for (const programId of programIds) {
        const loaded = must(await loadAggregate(programAggregate, engine.store, programStreamId(programId))())
        if (!loaded.state.exists) continue
        const program = loaded.state
        const own = isMemberOf(actor, program.practiceId)
        const cohort = cohortOpenedWithin(intakes.get(programId) ?? [], loaded.events, from, to)
        cells.push(...programReportCells(program, cohort, (n) => (own || n >= threshold ? null : marker)))
      }
      if (wantsCsv(query, request)) {
        reply.header('content-type', 'text/csv; charset=utf-8')
        reply.header('content-disposition', 'attachment; filename="programs.csv"')
        return reply.send(reportCsv(cells)) as never
      }
      return {
        report: 'programs' as const,
        from,
        to,
        practiceId: practiceId ?? null,
        programId: query.programId ?? null,
        suppressionThreshold: threshold,
        generatedAt: engine.clock.now(),
        cells,
      }
    },
  })
}
