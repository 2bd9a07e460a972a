import {
  AddMemberPayload,
  ChangeFtePayload,
  ChangeMemberRolePayload,
  ConfigureSpecialistPayload,
  CreatePracticePayload,
  type Engine,
  PauseReceivingPayload,
  type PracticeCommandPayload as PracticeCommand,
  PracticeCommandPayload,
  type PracticeId,
  RemoveMemberPayload,
  ResumeReceivingPayload,
  RevokeVerificationPayload,
  VerifyPracticePayload,
} from '@referrals/core'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { setEtag } from '../etag.js'
import { operationIdOf, route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'
import { requirePracticeVisible } from './access.js'
import { AsOfQuery, PracticeParams, requestBody } from './codecs.js'
import { must, notFound, pinnedVersion, requestContext } from './failures.js'
import { PracticeView, practiceView } from './views.js'

/** `/practices`: create, read (also as of an instant) and the practice commands. */
type PracticeCommandType = PracticeCommand['type']

export const practiceRoutes: FastifyPluginAsync<{ readonly engine: Engine }> = async (app, { engine }) => {
  const practiceResponse = async (practiceId: PracticeId, reply: FastifyReply) => {
    const loaded = must(await engine.practices.load(practiceId)())
    if (!loaded.state.exists) throw notFound('Practice')
    setEtag(reply, loaded.version)
    return practiceView(loaded.state, loaded.version)
  }

  route(app, {
    method: 'POST',
    url: '/practices',
    operationId: 'createPractice',
    location: true,
    etag: true,
    tags: ['practices'],
    summary: 'Create a practice (the caller becomes its owner)',
    body: requestBody(CreatePracticePayload, 'CreatePractice'),
    response: PracticeView,
    handler: async ({ body }, request, reply) => {
      must(
        await engine.practices.execute(
          body.practiceId,
          { type: 'CreatePractice', data: body },
          requestContext(request),
        )(),
      )
      reply.header('location', `/practices/${body.practiceId}`)
      return practiceResponse(body.practiceId, reply)
    },
  })

  route(app, {
    method: 'GET',
    url: '/practices/:practiceId',
    operationId: 'getPractice',
    etag: true,
    description:
      'Members, platform admins and auditors see the practice; to anyone else it does not exist (404). `asOf` returns it as it was at that instant (no ETag then).',
    tags: ['practices'],
    summary: 'A practice: members, specialist settings, verification and receiving status',
    params: PracticeParams,
    query: AsOfQuery,
    response: PracticeView,
    handler: async ({ params, query }, request, reply) => {
      requirePracticeVisible(requireActor(request), params.practiceId)
      if (query.asOf === undefined) return practiceResponse(params.practiceId, reply)
      const loaded = must(await engine.practices.load(params.practiceId, { asOf: query.asOf })())
      if (!loaded.state.exists) throw notFound('Practice')
      return practiceView(loaded.state, loaded.version)
    },
  })

  const practiceActions: readonly [string, PracticeCommandType, t.Mixed, string][] = [
    ['members', 'AddMember', requestBody(AddMemberPayload, 'AddMember'), 'Add a member with a role'],
    [
      'members/remove',
      'RemoveMember',
      requestBody(RemoveMemberPayload, 'RemoveMember'),
      'Remove a member (never the last owner)',
    ],
    [
      'members/role',
      'ChangeMemberRole',
      requestBody(ChangeMemberRolePayload, 'ChangeMemberRole'),
      "Change a member's role",
    ],
    [
      'specialist-settings',
      'ConfigureSpecialist',
      requestBody(ConfigureSpecialistPayload, 'ConfigureSpecialist'),
      'Set specialty, regions, categories, FTE, insurance networks',
    ],
    [
      'fte',
      'ChangeFte',
      requestBody(ChangeFtePayload, 'ChangeFte'),
      'Change the FTE weight used by the router',
    ],
    [
      'pause',
      'PauseReceiving',
      requestBody(PauseReceivingPayload, 'PauseReceiving'),
      'Stop receiving pooled referrals',
    ],
    [
      'resume',
      'ResumeReceiving',
      requestBody(ResumeReceivingPayload, 'ResumeReceiving'),
      'Receive pooled referrals again',
    ],
    [
      'verify',
      'VerifyPractice',
      requestBody(VerifyPracticePayload, 'VerifyPractice'),
      'Verify a specialist practice (platform admin)',
    ],
    [
      'revoke-verification',
      'RevokeVerification',
      requestBody(RevokeVerificationPayload, 'RevokeVerification'),
      'Revoke verification (platform admin)',
    ],
  ]
  for (const [path, type, body, summary] of practiceActions) {
    route(app, {
      method: 'POST',
      url: `/practices/:practiceId/${path}`,
      operationId: operationIdOf(type),
      ifMatch: true,
      etag: true,
      description: `${summary}: the \`${type}\` command. Answers the practice as it is afterwards.`,
      tags: ['practices'],
      summary,
      params: PracticeParams,
      body,
      response: PracticeView,
      successStatus: 200,
      handler: async ({ params, body: data }, request, reply) => {
        const payload = PracticeCommandPayload.decode({ type, data })
        if (E.isLeft(payload)) throw new ProblemError(httpProblem('bad_request'))
        // Like the GET: a practice's existence is not disclosed to users outside it.
        requirePracticeVisible(requireActor(request), params.practiceId)
        const pinned = pinnedVersion(request)
        must(
          await engine.practices.execute(
            params.practiceId,
            payload.right,
            requestContext(request),
            pinned === undefined ? {} : { expectedVersion: pinned },
          )(),
          pinned,
        )
        return practiceResponse(params.practiceId, reply)
      },
    })
  }
}
