import {
  CancelReferralData,
  ChangeCategoryData,
  ChangeUrgencyData,
  type CommandOutcome,
  type CommandResult,
  CompleteReferralData,
  DeclineReferralData,
  type Engine,
  isDomainError,
  PostMessageData,
  RedirectReferralData,
  type ReferralCommandPayload as ReferralCommand,
  ReferralCommandPayload,
  type ReferralEvent,
  ReferralId,
  type ReferralState,
  type Routing,
  ScheduleAppointmentData,
  SendReferralData,
} from '@referrals/core'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { setEtag, weakEtag } from '../etag.js'
import { JSON_CONTENT_TYPE, type StoredResponse, transactionalCompletion } from '../idempotency.js'
import { nameSchema } from '../openapi/io-ts-schema.js'
import { operationIdOf, route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'
import {
  accessOf,
  detailFor,
  historyFor,
  phiReadAuditor,
  requireReferralVisible,
  scopedPatientId,
  stricterAccess,
} from './access.js'
import { AsOfQuery, EmptyRequest, ReferralParams } from './codecs.js'
import { must, notFound, pinnedVersion, requestContext } from './failures.js'
import {
  HistoryEntry,
  historyEntry,
  ReferralDetailView,
  ReferralSummaryView,
  referralDetail,
  summaryFromState,
} from './views.js'

type ReferralCommandType = ReferralCommand['type']

export interface ReferralRouteDeps {
  readonly engine: Engine
  readonly routing: Routing
}

/** `/referrals`: send, the referral commands, the detail (also as of an instant), history and routing. */
export const referralRoutes: FastifyPluginAsync<ReferralRouteDeps> = async (app, { engine, routing }) => {
  const auditRead = phiReadAuditor(engine)

  /** A command's answer, from the state `execute` returned (routing included): no second read. */
  const commandResponse = (result: CommandResult<ReferralEvent, ReferralState>, reply: FastifyReply) => {
    if (!result.state.exists) throw notFound('Referral')
    setEtag(reply, result.version)
    return summaryFromState(result.state, result.version, result.updatedAt ?? result.state.sentAt)
  }

  /**
   * With an `Idempotency-Key` on a store that can (PostgreSQL), the answer is stored in the
   * command's own transaction: `companion` builds it from the outcome the commit is about to write
   * (the same summary, ETag and Location the handler would send), and when the engine reports it
   * written, `sendWritten` sends exactly that (the claim is settled; `onSend` stores nothing).
   * Otherwise (no key, another store, routed after the commit) the answer is stored apart by `onSend`.
   */
  const answerInTransaction = (request: FastifyRequest, status: number, location?: string) => {
    const completion = transactionalCompletion(request)
    if (completion === undefined) return { options: {}, sendWritten: () => undefined }
    let answer: StoredResponse | undefined
    const companion = (outcome: CommandOutcome<ReferralState>) => {
      answer = undefined
      if (!outcome.state.exists) return undefined
      const body = JSON.stringify(
        ReferralSummaryView.encode(summaryFromState(outcome.state, outcome.version, outcome.updatedAt)),
      )
      const headers: Record<string, string> = {
        'content-type': JSON_CONTENT_TYPE,
        ...(location === undefined ? {} : { location }),
        etag: weakEtag(outcome.version),
      }
      answer = { status, headers, body }
      return completion.write(answer)
    }
    return {
      options: { companion },
      /** The reply, sent, when the answer was written with the command; else undefined. */
      sendWritten: (result: CommandResult<ReferralEvent, ReferralState>, reply: FastifyReply) => {
        if (result.companionWritten !== true || answer === undefined) return undefined
        completion.written()
        return reply.code(answer.status).headers(answer.headers).send(answer.body)
      },
    }
  }

  route(app, {
    method: 'POST',
    url: '/referrals',
    operationId: 'sendReferral',
    location: true,
    etag: true,
    tags: ['referrals'],
    summary: 'Send a referral to a specialist (direct) or let the engine choose (pooled)',
    description:
      'The client chooses `referralId` (e.g. a UUID) and a pseudonymous `patientId` (its own patient key, never a health number). The stored patient id is scoped by the sending practice (`<senderPracticeId>:<patientId>`, at most 128 characters), so two practices using the same local id never share a patient data key, a forgetting or an audit trail. A pooled referral is routed at once when a specialist is available, otherwise it waits `unassigned`.',
    body: nameSchema(SendReferralData, 'SendReferralRequest'),
    response: ReferralSummaryView,
    handler: async ({ body }, request, reply) => {
      const patientId = scopedPatientId(body.senderPracticeId, body.patientId)
      const location = `/referrals/${body.referralId}`
      const inTransaction = answerInTransaction(request, 201, location)
      const sent = must(
        await engine.referrals.execute(
          body.referralId,
          { type: 'SendReferral', data: { ...body, patientId } },
          requestContext(request),
          inTransaction.options,
        )(),
      )
      const written = inTransaction.sendWritten(sent, reply)
      if (written !== undefined) return written
      reply.header('location', location)
      return commandResponse(sent, reply)
    },
  })

  const referralActions: readonly [string, ReferralCommandType, t.Mixed, string][] = [
    ['accept', 'AcceptReferral', EmptyRequest, 'Accept (recipient)'],
    [
      'decline',
      'DeclineReferral',
      nameSchema(DeclineReferralData, 'DeclineReferralRequest'),
      'Decline with a reason (recipient); pooled referrals are re-routed',
    ],
    [
      'redirect',
      'RedirectReferral',
      nameSchema(RedirectReferralData, 'RedirectReferralRequest'),
      'Send a returned referral elsewhere (sender)',
    ],
    [
      'cancel',
      'CancelReferral',
      nameSchema(CancelReferralData, 'CancelReferralRequest'),
      'Cancel with a reason (sender)',
    ],
    [
      'appointment',
      'ScheduleAppointment',
      nameSchema(ScheduleAppointmentData, 'AppointmentRequest'),
      'Schedule the appointment (recipient)',
    ],
    [
      'appointment/reschedule',
      'RescheduleAppointment',
      nameSchema(ScheduleAppointmentData, 'AppointmentRequest'),
      'Reschedule (recipient)',
    ],
    ['no-show', 'RecordNoShow', EmptyRequest, 'Record a no-show (recipient)'],
    [
      'complete',
      'CompleteReferral',
      nameSchema(CompleteReferralData, 'CompleteReferralRequest'),
      'Complete with an optional outcome note (recipient)',
    ],
    [
      'urgency',
      'ChangeUrgency',
      nameSchema(ChangeUrgencyData, 'ChangeUrgencyRequest'),
      'Change urgency (recipient); the previous value is kept',
    ],
    [
      'category',
      'ChangeCategory',
      nameSchema(ChangeCategoryData, 'ChangeCategoryRequest'),
      'Re-file under another category (recipient)',
    ],
    [
      'messages',
      'PostMessage',
      nameSchema(PostMessageData, 'PostMessageRequest'),
      'Post a message (sender or recipient)',
    ],
  ]
  for (const [path, type, body, summary] of referralActions) {
    route(app, {
      method: 'POST',
      url: `/referrals/:referralId/${path}`,
      operationId: operationIdOf(type),
      ifMatch: true,
      etag: true,
      tags: ['referrals'],
      summary,
      description: `${summary}: the \`${type}\` command. Answers the referral's summary as it is afterwards; 404 for a referral the caller has no part in.`,
      params: ReferralParams,
      body,
      response: ReferralSummaryView,
      successStatus: 200,
      handler: async ({ params, body: data }, request, reply) => {
        const payload = ReferralCommandPayload.decode({ type, data: data ?? {} })
        if (E.isLeft(payload)) throw new ProblemError(httpProblem('bad_request'))
        // Like the GET: a referral's existence is not disclosed to users outside it.
        const loaded = must(await engine.referrals.load(params.referralId)())
        requireReferralVisible(requireActor(request), loaded.state)
        const pinned = pinnedVersion(request, loaded.version)
        const inTransaction = answerInTransaction(request, 200)
        const r = await engine.referrals.execute(params.referralId, payload.right, requestContext(request), {
          preloaded: loaded,
          ...(pinned === undefined ? {} : { expectedVersion: pinned }),
          ...inTransaction.options,
        })()
        if (E.isLeft(r) && isDomainError(r.left) && r.left.code === 'referral.not_found')
          throw notFound('Referral')
        const result = must(r, pinned)
        return inTransaction.sendWritten(result, reply) ?? commandResponse(result, reply)
      },
    })
  }

  route(app, {
    method: 'GET',
    url: '/referrals/:referralId',
    operationId: 'getReferral',
    etag: true,
    purposeOfUse: true,
    tags: ['referrals'],
    summary: 'A referral with its PHI (for sender and current recipient; every read is audited)',
    description:
      'Former recipients see the record without PHI. `asOf` returns the referral as it was at that instant (no ETag then). Send `X-Purpose-Of-Use` (treatment, operations, audit, patient_request, legal) to record why PHI is read.',
    params: ReferralParams,
    query: AsOfQuery,
    response: ReferralDetailView,
    handler: async ({ params, query }, request, reply) => {
      const actor = requireActor(request)
      const loaded = must(
        await engine.referrals.load(
          params.referralId,
          query.asOf === undefined ? {} : { asOf: query.asOf },
        )(),
      )
      // Access is what the caller may see now, further limited by what it could see then: a
      // former recipient must not regain PHI by asking for an instant when it held the referral.
      const current =
        query.asOf === undefined ? loaded : must(await engine.referrals.load(params.referralId)())
      const access = stricterAccess(accessOf(actor, current.state), accessOf(actor, loaded.state))
      if (access === 'none' || !loaded.state.exists) {
        await auditRead(request, actor, loaded.state, params.referralId, 'denied')
        throw notFound('Referral')
      }
      if (access === 'phi') await auditRead(request, actor, loaded.state, params.referralId, 'granted')
      if (query.asOf === undefined) setEtag(reply, loaded.version)
      const last = loaded.stored.at(-1)
      const summary = summaryFromState(loaded.state, loaded.version, last?.recordedAt ?? loaded.state.sentAt)
      return detailFor(referralDetail(loaded, summary, access === 'phi'), access)
    },
  })

  route(app, {
    method: 'GET',
    url: '/referrals/:referralId/history',
    operationId: 'getReferralHistory',
    purposeOfUse: true,
    description:
      'Each recorded event with its actor, time and data (previous values included); PHI only for callers who may see it. A former recipient sees the history up to its own decline or expiry.',
    tags: ['referrals'],
    summary: 'Every change of the referral with actor, time and previous values',
    params: ReferralParams,
    response: nameSchema(
      t.type({ referralId: ReferralId, entries: t.array(HistoryEntry) }),
      'ReferralHistory',
    ),
    handler: async ({ params }, request) => {
      const actor = requireActor(request)
      const loaded = must(await engine.referrals.load(params.referralId)())
      const access = accessOf(actor, loaded.state)
      if (access === 'none') {
        await auditRead(request, actor, loaded.state, params.referralId, 'denied')
        throw notFound('Referral')
      }
      if (access === 'phi') await auditRead(request, actor, loaded.state, params.referralId, 'granted')
      const entries = loaded.stored.map((s, i) =>
        historyEntry(s, loaded.events[i] as (typeof loaded.events)[number], access === 'phi'),
      )
      return { referralId: params.referralId, entries: [...historyFor(actor, loaded, entries, access)] }
    },
  })

  route(app, {
    method: 'GET',
    url: '/referrals/:referralId/routing',
    operationId: 'explainReferralRouting',
    tags: ['referrals'],
    summary: 'Why a pooled referral went where it went: candidates, loads, exclusions, tie-break',
    description:
      'For the sender, the current recipient and platform admins: one line per routing decision of a pooled referral, in plain words; `decisions` counts them (0 for a direct referral).',
    params: ReferralParams,
    response: nameSchema(
      t.type({ referralId: ReferralId, lines: t.array(t.string), decisions: t.number }),
      'RoutingExplanation',
    ),
    handler: async ({ params }, request) => {
      const actor = requireActor(request)
      const loaded = must(await engine.referrals.load(params.referralId)())
      requireReferralVisible(actor, loaded.state, { orAdmin: true })
      const explained = must(await routing.explain(params.referralId))
      return {
        referralId: params.referralId,
        lines: explained === null ? [] : [...explained.lines],
        decisions: explained?.decisions.length ?? 0,
      }
    },
  })
}
