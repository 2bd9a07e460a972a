import { randomBytes } from 'node:crypto'
import {
  CreateProgramPayload,
  campaignFunnelCsv,
  DefineIncentiveRulePayload,
  type Engine,
  type ExistingProgram,
  executeCommand,
  LinkAttribution,
  type LinkCodeGenerator,
  linkCodeFromBytes,
  linkFunnelCsv,
  loadAggregate,
  type ProgramCommand,
  type ProgramCommandPayload as ProgramCommandData,
  ProgramCommandPayload,
  type ProgramCommandType,
  type ProgramId,
  PublishConsentVersionPayload,
  programAggregate,
  programStreamId,
  projectFunnel,
  ReferralLinkId,
  SetIntakeGuidancePayload,
} from '@referrals/core'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { setEtag } from '../etag.js'
import { nameSchema } from '../openapi/io-ts-schema.js'
import { operationIdOf, route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'
import { requirePracticeVisible, requireProgramVisible } from './access.js'
import { EmptyRequest, PracticeParams, ProgramLinkParams, ProgramParams, requestBody } from './codecs.js'
import { must, notFound, pinnedVersion, requestContext } from './failures.js'
import { intakeEventsOfProgram, programsOfPractice } from './program-reads.js'
import {
  IncentiveDecisionsView,
  incentiveDecisionsView,
  ProgramFunnelView,
  ProgramList,
  ProgramView,
  programFunnel,
  programFunnelView,
  programView,
} from './program-views.js'

/**
 * Link codes for production: 16 characters drawn from the operating system's cryptographic source
 * (80 bits), since a code opens a public intake page and must not be guessable.
 */
export const randomLinkCodes = (): LinkCodeGenerator => ({ next: () => linkCodeFromBytes(randomBytes(16)) })

/** The link-creation body: the client names the link and its attribution; the server draws the code. */
const CreateReferralLinkRequest = nameSchema(
  t.exact(t.type({ linkId: ReferralLinkId, attribution: LinkAttribution })),
  'CreateReferralLinkRequest',
)
const LinkQuery = t.partial({ linkId: ReferralLinkId })

export interface ProgramRoutesOptions {
  readonly engine: Engine
  /** Where new link codes come from (default `randomLinkCodes()`). */
  readonly linkCodes?: LinkCodeGenerator
}

/**
 * `/programs` and `/practices/:practiceId/programs`: referral programs for practice owners
 * (program, consent and disclosure versions, referral links and their attribution, incentive
 * rules), and the funnel and incentive reads. Programs are visible where their practice is; the
 * program decider lets only the practice's owners change them.
 */
export const programRoutes: FastifyPluginAsync<ProgramRoutesOptions> = async (app, options) => {
  const { engine } = options
  const linkCodes = options.linkCodes ?? randomLinkCodes()
  const deps = { store: engine.store, ids: engine.ids }

  const load = async (programId: ProgramId) =>
    must(await loadAggregate(programAggregate, engine.store, programStreamId(programId))())

  /** The program, if the caller may see it; otherwise (or if there is none) 404. */
  const visibleProgram = async (request: FastifyRequest, programId: ProgramId) => {
    const loaded = await load(programId)
    if (!loaded.state.exists) throw notFound('Program')
    requireProgramVisible(requireActor(request), loaded.state.practiceId)
    return { ...loaded, state: loaded.state as ExistingProgram }
  }
  const authorizeProgram = async (request: FastifyRequest, params: { readonly programId: ProgramId }) => {
    await visibleProgram(request, params.programId)
  }

  const execute = async (
    programId: ProgramId,
    payload: ProgramCommandData,
    request: FastifyRequest,
    reply: FastifyReply,
  ) => {
    const pinned = pinnedVersion(request)
    const command = { ...payload, meta: engine.meta(requestContext(request)) } as ProgramCommand
    const result = must(
      await executeCommand(
        programAggregate,
        deps,
        programStreamId(programId),
        command,
        pinned === undefined ? {} : { expectedVersion: pinned },
      )(),
      pinned,
    )
    if (!result.state.exists) throw notFound('Program')
    setEtag(reply, result.version)
    return programView(result.state, result.version)
  }

  /** Decodes `{ type, data }` as the core's command codec (the route codecs are its `data`). */
  const commandOf = (type: ProgramCommandType, data: unknown): ProgramCommandData => {
    const payload = ProgramCommandPayload.decode({ type, data })
    if (E.isLeft(payload)) throw new ProblemError(httpProblem('bad_request'))
    return payload.right
  }

  route(app, {
    method: 'POST',
    url: '/programs',
    operationId: 'createProgram',
    location: true,
    etag: true,
    tags: ['programs'],
    summary: 'Create a referral program for a practice (its owners)',
    description:
      'An owner of `practiceId` creates a program targeting one practice (optionally a location) or a pool (region, specialty, category). Outsiders get 404 for the practice; members who are not owners, admins and auditors 403.',
    body: requestBody(CreateProgramPayload, 'CreateProgram'),
    response: ProgramView,
    handler: async ({ body }, request, reply) => {
      requirePracticeVisible(requireActor(request), body.practiceId)
      const view = await execute(body.programId, commandOf('CreateProgram', body), request, reply)
      reply.header('location', `/programs/${body.programId}`)
      return view
    },
  })

  route(app, {
    method: 'GET',
    url: '/practices/:practiceId/programs',
    operationId: 'listPracticePrograms',
    tags: ['programs'],
    summary: "A practice's referral programs, oldest first",
    description: 'For members of the practice, platform admins and auditors (404 for anyone else).',
    params: PracticeParams,
    authorize: (request, params) => requirePracticeVisible(requireActor(request), params.practiceId),
    response: ProgramList,
    handler: async ({ params }) => {
      const ids = must(await programsOfPractice(engine.store, params.practiceId))
      const items: ProgramList['items'] = []
      for (const programId of ids) {
        const loaded = await load(programId)
        if (!loaded.state.exists) continue
        items.push({
          programId,
          name: loaded.state.name,
          links: loaded.state.links.length,
          activeLinks: loaded.state.links.filter((l) => l.status === 'active').length,
          version: loaded.version,
        })
      }
      return { items }
    },
  })

  route(app, {
    method: 'GET',
    url: '/programs/:programId',
    operationId: 'getProgram',
    etag: true,
    tags: ['programs'],
    summary:
      'A referral program: target, consent versions, links with their codes and status, incentive rules',
    description:
      'Visible to members of its practice, platform admins and auditors; to anyone else it does not exist (404).',
    params: ProgramParams,
    authorize: authorizeProgram,
    response: ProgramView,
    handler: async ({ params }, request, reply) => {
      const loaded = await visibleProgram(request, params.programId)
      setEtag(reply, loaded.version)
      return programView(loaded.state, loaded.version)
    },
  })

  const programActions: readonly [string, ProgramCommandType, t.Mixed, string][] = [
    [
      'consent-versions',
      'PublishConsentVersion',
      requestBody(PublishConsentVersionPayload, 'PublishConsentVersion'),
      'Publish a new consent and disclosure version (no clinical detail)',
    ],
    [
      'incentive-rules',
      'DefineIncentiveRule',
      requestBody(DefineIncentiveRulePayload, 'DefineIncentiveRule'),
      'Define a non-cash incentive rule with eligibility, caps and disclosure',
    ],
    [
      'intake-guidance',
      'SetIntakeGuidance',
      requestBody(SetIntakeGuidancePayload, 'SetIntakeGuidance'),
      'Set the FAQ, insurance and scheduling guidance of the public intake pages',
    ],
  ]
  for (const [path, type, body, summary] of programActions) {
    route(app, {
      method: 'POST',
      url: `/programs/:programId/${path}`,
      operationId: operationIdOf(type),
      ifMatch: true,
      etag: true,
      description: `${summary}: the \`${type}\` command (owners of the practice). Answers the program as it is afterwards.`,
      tags: ['programs'],
      summary,
      params: ProgramParams,
      authorize: authorizeProgram,
      body,
      response: ProgramView,
      successStatus: 200,
      handler: async ({ params, body: data }, request, reply) =>
        execute(params.programId, commandOf(type, data), request, reply),
    })
  }

  route(app, {
    method: 'POST',
    url: '/programs/:programId/links',
    operationId: 'createReferralLink',
    ifMatch: true,
    etag: true,
    tags: ['programs'],
    summary: 'Create a referral link with its attribution; the server draws its code',
    description:
      'The `CreateReferralLink` command (owners of the practice). Attribution: channel, campaign, location, service line, referring practice, or a referring person by pseudonymous id (never a name). The code (unambiguous base32, unguessable) is drawn by the server; retrying with the same link id and attribution answers the same link. Answers the program as it is afterwards.',
    params: ProgramParams,
    authorize: authorizeProgram,
    body: CreateReferralLinkRequest,
    response: ProgramView,
    successStatus: 200,
    handler: async ({ params, body }, request, reply) => {
      const loaded = await visibleProgram(request, params.programId)
      // A retry keeps the code the link was given, so the decider sees a restated fact.
      const code = loaded.state.links.find((l) => l.linkId === body.linkId)?.code ?? linkCodes.next()
      return execute(
        params.programId,
        commandOf('CreateReferralLink', { linkId: body.linkId, code, attribution: body.attribution }),
        request,
        reply,
      )
    },
  })

  const linkActions: readonly [string, ProgramCommandType, string][] = [
    ['pause', 'PauseReferralLink', 'Pause a referral link (its page stops accepting intakes)'],
    ['resume', 'ResumeReferralLink', 'Resume a paused referral link'],
    ['retire', 'RetireReferralLink', 'Retire a referral link for good (it keeps its history)'],
  ]
  for (const [path, type, summary] of linkActions) {
    route(app, {
      method: 'POST',
      url: `/programs/:programId/links/:linkId/${path}`,
      operationId: operationIdOf(type),
      ifMatch: true,
      etag: true,
      description: `${summary}: the \`${type}\` command (owners of the practice). A retired link refuses every change (422 \`program.link_retired\`). Answers the program as it is afterwards.`,
      tags: ['programs'],
      summary,
      params: ProgramLinkParams,
      authorize: authorizeProgram,
      body: EmptyRequest,
      response: ProgramView,
      successStatus: 200,
      handler: async ({ params }, request, reply) =>
        execute(params.programId, commandOf(type, { linkId: params.linkId }), request, reply),
    })
  }

  /** The program's funnel (no PHI, no per-person ids), optionally narrowed to one link. */
  const funnelOf = async (request: FastifyRequest, programId: ProgramId, linkId?: ReferralLinkId) => {
    const loaded = await visibleProgram(request, programId)
    if (linkId !== undefined && !loaded.state.links.some((l) => l.linkId === linkId))
      throw notFound('Referral link')
    const events = must(await intakeEventsOfProgram(engine.store, programId))
    return { program: loaded.state, funnel: programFunnel(loaded.state, projectFunnel(events), linkId) }
  }

  route(app, {
    method: 'GET',
    url: '/programs/:programId/funnel',
    operationId: 'getProgramFunnel',
    tags: ['programs'],
    summary:
      'The funnel per link and per campaign: opened → submitted → referral sent → scheduled → completed, no-shows',
    description:
      'Counts of intakes that reached each stage (once per intake) with the first and last time, per link (every link, also those nobody opened) and per campaign (of the links opened). `linkId` narrows it to one link. Attribution and counts only: no PHI, no intake, patient or referring-person ids. Visible where the program is.',
    params: ProgramParams,
    query: LinkQuery,
    authorize: authorizeProgram,
    response: ProgramFunnelView,
    handler: async ({ params, query }, request) => {
      const { program, funnel } = await funnelOf(request, params.programId, query.linkId)
      return programFunnelView(program, funnel)
    },
  })

  const csvExports: readonly [string, string, string, (f: ReturnType<typeof projectFunnel>) => string][] = [
    ['links', 'exportProgramLinkFunnelCsv', 'one link per row', linkFunnelCsv],
    ['campaigns', 'exportProgramCampaignFunnelCsv', 'one campaign per row', campaignFunnelCsv],
  ]
  for (const [name, operationId, rows, toCsv] of csvExports) {
    route(app, {
      method: 'GET',
      url: `/programs/:programId/funnel/${name}.csv`,
      operationId,
      produces: 'text/csv',
      responseDescription: `text/csv, ${rows}`,
      tags: ['programs'],
      summary: `CSV export of the program's funnel, ${rows} (no PHI, no per-person ids)`,
      description: `The funnel of \`GET /programs/{programId}/funnel\` as RFC 4180 CSV, ${rows}: attribution and, per stage, the count and the first and last time. \`linkId\` narrows it to one link.`,
      params: ProgramParams,
      query: LinkQuery,
      authorize: authorizeProgram,
      handler: async ({ params, query }, request, reply) => {
        const { funnel } = await funnelOf(request, params.programId, query.linkId)
        reply.header('content-type', 'text/csv; charset=utf-8')
        reply.header('content-disposition', `attachment; filename="${params.programId}-${name}-funnel.csv"`)
        return reply.send(toCsv(funnel))
      },
    })
  }

  route(app, {
    method: 'GET',
    url: '/programs/:programId/incentives',
    operationId: 'getProgramIncentives',
    tags: ['programs'],
    summary: 'Incentive awards and refusals per link, each with the rule and the facts that decided it',
    description:
      'Every award and refusal recorded on the program, oldest first, with the rule as it was, the facts it was decided on and the reason, so an auditor can replay why; and per link the number of awards and refusals. `linkId` narrows it to one link. The referrer is named only when it is a practice: no PHI, no intake or referring-person ids. Visible where the program is.',
    params: ProgramParams,
    query: LinkQuery,
    authorize: authorizeProgram,
    response: IncentiveDecisionsView,
    handler: async ({ params, query }, request) => {
      const loaded = await visibleProgram(request, params.programId)
      if (query.linkId !== undefined && !loaded.state.links.some((l) => l.linkId === query.linkId))
        throw notFound('Referral link')
      return incentiveDecisionsView(loaded.state, loaded.events, query.linkId)
    },
  })
}
