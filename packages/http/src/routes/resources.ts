import {
  AddMemberPayload,
  ApproveCategoryPayload,
  CancelReferralData,
  CatalogCommandPayload,
  ChangeCategoryData,
  ChangeFtePayload,
  ChangeMemberRolePayload,
  ChangeUrgencyData,
  CompleteReferralData,
  ConfigureSpecialistPayload,
  type CorrelationId,
  CreatePracticePayload,
  DeclineReferralData,
  DefineSpecialtyPayload,
  type Engine,
  hasPlatformRole,
  Instant,
  isDomainError,
  isMemberOf,
  PatientId,
  PauseReceivingPayload,
  PostMessageData,
  PracticeCommandPayload,
  PracticeId,
  ProposeCategoryPayload,
  RedirectReferralData,
  ReferralCommandPayload,
  ReferralId,
  ReferralStatus,
  RemoveMemberPayload,
  RenameCategoryPayload,
  ResumeReceivingPayload,
  RetireCategoryPayload,
  RevokeVerificationPayload,
  type Routing,
  recordPhiAccess,
  ScheduleAppointmentData,
  SendReferralData,
  SpecialtyId,
  Urgency,
  unsafeId,
  VerifyPracticePayload,
} from '@referrals/core'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { setEtag } from '../etag.js'
import { IntFromQuery, route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'
import type { AttachmentStore } from './attachment-store.js'
import { type AttachmentLimits, DEFAULT_ATTACHMENT_LIMITS, registerAttachmentRoutes } from './attachments.js'
import { registerAuditRoutes } from './audit.js'
import { csvCell } from './csv.js'
import { forbidden, must, notFound, pinnedVersion, requestContext } from './failures.js'
import { accessOf, Purpose, phiReadAuditor, stricterAccess } from './referral-access.js'
import {
  CatalogView,
  catalogView,
  HistoryEntry,
  historyEntry,
  PracticeView,
  practiceView,
  ReferralDetailView,
  ReferralPage,
  ReferralSummaryView,
  referralDetail,
  summaryFromState,
  summaryView,
} from './views.js'

export interface ResourceDeps {
  readonly engine: Engine
  readonly routing: Routing
  /** Encrypted attachment content; without it the attachment routes are not registered. */
  readonly attachments?: AttachmentStore
  /** Upload limits (default: 20 MiB; PDF, PNG, JPEG); pass the `Config`. */
  readonly attachmentLimits?: AttachmentLimits
}

/** The `data` codec of a `{ type, data }` command payload codec (readonly/exact wrappers peeled). */
const dataOf = <P extends t.Mixed>(payload: P): t.Type<t.TypeOf<P>['data'], unknown, unknown> => {
  let codec: t.Mixed = payload
  while (!('props' in codec) && 'type' in codec) codec = (codec as unknown as { type: t.Mixed }).type
  return (codec as unknown as t.InterfaceType<{ data: t.Mixed }>).props.data as t.Type<
    t.TypeOf<P>['data'],
    unknown,
    unknown
  >
}

const PracticeParams = t.type({ practiceId: PracticeId })
const SpecialtyParams = t.type({ specialtyId: SpecialtyId })
const ReferralParams = t.type({ referralId: ReferralId })
const AsOfQuery = t.partial({ asOf: Instant })
/** Referral lists: filters, search and cursor pagination. */
const ListQuery = t.intersection([
  t.type({ box: t.keyof({ sent: null, received: null }) }),
  t.partial({
    status: ReferralStatus,
    urgency: Urgency,
    specialtyId: SpecialtyId,
    categoryId: t.string,
    patient: t.string,
    sentFrom: Instant,
    sentTo: Instant,
    limit: IntFromQuery,
    cursor: t.string,
  }),
])

export const registerResourceRoutes =
  (deps: ResourceDeps) =>
  async (app: FastifyInstance): Promise<void> => {
    const { engine, routing } = deps
    const auditRead = phiReadAuditor(engine)

    // Auditor accounts are read-only (SPEC §3): no command, upload or settings change.
    app.addHook('preHandler', async (request) => {
      const actor = request.actor
      if (request.method === 'GET' || request.method === 'HEAD' || actor === null || actor.kind !== 'user')
        return
      if (hasPlatformRole(actor, 'auditor')) {
        throw new ProblemError(httpProblem('forbidden', 'Auditor accounts are read-only.'))
      }
    })

    route(app, {
      method: 'GET',
      url: '/me',
      tags: ['account'],
      summary: 'The authenticated user: platform roles and practice memberships',
      response: t.type({
        userId: t.string,
        platformRoles: t.array(t.string),
        memberships: t.array(t.type({ practiceId: t.string, role: t.string })),
      }),
      handler: async (_input, request) => {
        const actor = requireActor(request)
        if (actor.kind !== 'user') throw forbidden()
        return {
          userId: actor.userId,
          platformRoles: [...actor.platformRoles],
          memberships: actor.memberships.map((m) => ({ practiceId: m.practiceId, role: m.role })),
        }
      },
    })

    // ---------------------------------------------------------------- practices

    const practiceResponse = async (practiceId: PracticeId, reply: FastifyReply) => {
      const loaded = must(await engine.practices.load(practiceId)())
      if (!loaded.state.exists) throw notFound('Practice')
      setEtag(reply, loaded.version)
      return practiceView(loaded.state, loaded.version)
    }

    route(app, {
      method: 'POST',
      url: '/practices',
      tags: ['practices'],
      summary: 'Create a practice (the caller becomes its owner)',
      body: dataOf(CreatePracticePayload),
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
      tags: ['practices'],
      summary: 'A practice: members, specialist settings, verification and receiving status',
      params: PracticeParams,
      query: AsOfQuery,
      response: PracticeView,
      handler: async ({ params, query }, request, reply) => {
        const actor = requireActor(request)
        if (
          !isMemberOf(actor, params.practiceId) &&
          !hasPlatformRole(actor, 'admin') &&
          !hasPlatformRole(actor, 'auditor')
        ) {
          throw notFound('Practice')
        }
        if (query.asOf === undefined) return practiceResponse(params.practiceId, reply)
        const loaded = must(await engine.practices.load(params.practiceId, { asOf: query.asOf })())
        if (!loaded.state.exists) throw notFound('Practice')
        return practiceView(loaded.state, loaded.version)
      },
    })

    const practiceActions: readonly [string, string, t.Mixed, string][] = [
      ['members', 'AddMember', dataOf(AddMemberPayload), 'Add a member with a role'],
      [
        'members/remove',
        'RemoveMember',
        dataOf(RemoveMemberPayload),
        'Remove a member (never the last owner)',
      ],
      ['members/role', 'ChangeMemberRole', dataOf(ChangeMemberRolePayload), "Change a member's role"],
      [
        'specialist-settings',
        'ConfigureSpecialist',
        dataOf(ConfigureSpecialistPayload),
        'Set specialty, regions, categories, FTE, insurance networks',
      ],
      ['fte', 'ChangeFte', dataOf(ChangeFtePayload), 'Change the FTE weight used by the router'],
      ['pause', 'PauseReceiving', dataOf(PauseReceivingPayload), 'Stop receiving pooled referrals'],
      ['resume', 'ResumeReceiving', dataOf(ResumeReceivingPayload), 'Receive pooled referrals again'],
      [
        'verify',
        'VerifyPractice',
        dataOf(VerifyPracticePayload),
        'Verify a specialist practice (platform admin)',
      ],
      [
        'revoke-verification',
        'RevokeVerification',
        dataOf(RevokeVerificationPayload),
        'Revoke verification (platform admin)',
      ],
    ]
    for (const [path, type, body, summary] of practiceActions) {
      route(app, {
        method: 'POST',
        url: `/practices/:practiceId/${path}`,
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
          const actor = requireActor(request)
          if (
            !isMemberOf(actor, params.practiceId) &&
            !hasPlatformRole(actor, 'admin') &&
            !hasPlatformRole(actor, 'auditor')
          )
            throw notFound('Practice')
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

    // ---------------------------------------------------------------- catalog

    const catalogResponse = async (specialtyId: SpecialtyId, reply: FastifyReply) => {
      const loaded = must(await engine.catalog.load(specialtyId)())
      if (!loaded.state.exists) throw notFound('Specialty')
      setEtag(reply, loaded.version)
      return catalogView(loaded.state, loaded.version)
    }

    route(app, {
      method: 'POST',
      url: '/specialties',
      tags: ['catalog'],
      summary: 'Define a specialty (platform admin)',
      body: dataOf(DefineSpecialtyPayload),
      response: CatalogView,
      handler: async ({ body }, request, reply) => {
        must(
          await engine.catalog.execute(
            body.specialtyId,
            { type: 'DefineSpecialty', data: body },
            requestContext(request),
          )(),
        )
        reply.header('location', `/specialties/${body.specialtyId}`)
        return catalogResponse(body.specialtyId, reply)
      },
    })

    route(app, {
      method: 'GET',
      url: '/specialties/:specialtyId',
      tags: ['catalog'],
      summary: 'A specialty and its categories and subcategories with their status',
      params: SpecialtyParams,
      response: CatalogView,
      handler: async ({ params }, _request, reply) => catalogResponse(params.specialtyId, reply),
    })

    const catalogActions: readonly [string, string, t.Mixed, string][] = [
      ['categories', 'ProposeCategory', dataOf(ProposeCategoryPayload), 'Propose a category or subcategory'],
      [
        'categories/approve',
        'ApproveCategory',
        dataOf(ApproveCategoryPayload),
        'Approve a proposed category (admin)',
      ],
      ['categories/rename', 'RenameCategory', dataOf(RenameCategoryPayload), 'Rename a category (admin)'],
      [
        'categories/retire',
        'RetireCategory',
        dataOf(RetireCategoryPayload),
        'Retire a category (admin); history is kept',
      ],
    ]
    for (const [path, type, body, summary] of catalogActions) {
      route(app, {
        method: 'POST',
        url: `/specialties/:specialtyId/${path}`,
        tags: ['catalog'],
        summary,
        params: SpecialtyParams,
        body,
        response: CatalogView,
        successStatus: 200,
        handler: async ({ params, body: data }, request, reply) => {
          const payload = CatalogCommandPayload.decode({ type, data })
          if (E.isLeft(payload)) throw new ProblemError(httpProblem('bad_request'))
          const pinned = pinnedVersion(request)
          must(
            await engine.catalog.execute(
              params.specialtyId,
              payload.right,
              requestContext(request),
              pinned === undefined ? {} : { expectedVersion: pinned },
            )(),
            pinned,
          )
          return catalogResponse(params.specialtyId, reply)
        },
      })
    }

    // ---------------------------------------------------------------- referrals

    const referralSummaryResponse = async (referralId: ReferralId, reply: FastifyReply) => {
      const loaded = must(await engine.referrals.load(referralId)())
      if (!loaded.state.exists) throw notFound('Referral')
      const last = loaded.stored.at(-1)
      setEtag(reply, loaded.version)
      return summaryFromState(loaded.state, loaded.version, last?.recordedAt ?? loaded.state.sentAt)
    }

    route(app, {
      method: 'POST',
      url: '/referrals',
      tags: ['referrals'],
      summary: 'Send a referral to a specialist (direct) or let the engine choose (pooled)',
      description:
        'The client chooses `referralId` (e.g. a UUID) and a pseudonymous `patientId` (its own patient key, never a health number). The stored patient id is scoped by the sending practice (`<senderPracticeId>:<patientId>`, at most 128 characters), so two practices using the same local id never share a patient data key, a forgetting or an audit trail. A pooled referral is routed at once when a specialist is available, otherwise it waits `unassigned`.',
      body: SendReferralData,
      response: ReferralSummaryView,
      handler: async ({ body }, request, reply) => {
        const scoped = `${body.senderPracticeId}:${body.patientId}`
        if (!PatientId.is(scoped)) {
          throw new ProblemError(
            httpProblem('validation_failed', 'The request body is invalid.', {
              errors: [
                { path: 'body.patientId', expected: 'at most 127 characters together with senderPracticeId' },
              ],
            }),
          )
        }
        must(
          await engine.referrals.execute(
            body.referralId,
            { type: 'SendReferral', data: { ...body, patientId: scoped } },
            requestContext(request),
          )(),
        )
        reply.header('location', `/referrals/${body.referralId}`)
        return referralSummaryResponse(body.referralId, reply)
      },
    })

    const Empty = t.union([t.type({}), t.undefined, t.null])
    const referralActions: readonly [string, string, t.Mixed, string][] = [
      ['accept', 'AcceptReferral', Empty, 'Accept (recipient)'],
      [
        'decline',
        'DeclineReferral',
        DeclineReferralData,
        'Decline with a reason (recipient); pooled referrals are re-routed',
      ],
      ['redirect', 'RedirectReferral', RedirectReferralData, 'Send a returned referral elsewhere (sender)'],
      ['cancel', 'CancelReferral', CancelReferralData, 'Cancel with a reason (sender)'],
      ['appointment', 'ScheduleAppointment', ScheduleAppointmentData, 'Schedule the appointment (recipient)'],
      ['appointment/reschedule', 'RescheduleAppointment', ScheduleAppointmentData, 'Reschedule (recipient)'],
      ['no-show', 'RecordNoShow', Empty, 'Record a no-show (recipient)'],
      [
        'complete',
        'CompleteReferral',
        CompleteReferralData,
        'Complete with an optional outcome note (recipient)',
      ],
      [
        'urgency',
        'ChangeUrgency',
        ChangeUrgencyData,
        'Change urgency (recipient); the previous value is kept',
      ],
      ['category', 'ChangeCategory', ChangeCategoryData, 'Re-file under another category (recipient)'],
      ['messages', 'PostMessage', PostMessageData, 'Post a message (sender or recipient)'],
    ]
    for (const [path, type, body, summary] of referralActions) {
      route(app, {
        method: 'POST',
        url: `/referrals/:referralId/${path}`,
        tags: ['referrals'],
        summary,
        description:
          'Send `If-Match` with the ETag you read to fail with 412 instead of acting on a changed referral.',
        params: ReferralParams,
        body,
        response: ReferralSummaryView,
        successStatus: 200,
        handler: async ({ params, body: data }, request, reply) => {
          const payload = ReferralCommandPayload.decode({ type, data: data ?? {} })
          if (E.isLeft(payload)) throw new ProblemError(httpProblem('bad_request'))
          // Like the GET: a referral's existence is not disclosed to users outside it.
          const loaded = must(await engine.referrals.load(params.referralId)())
          if (accessOf(requireActor(request), loaded.state) === 'none') throw notFound('Referral')
          const pinned = pinnedVersion(request, loaded.version)
          const r = await engine.referrals.execute(
            params.referralId,
            payload.right,
            requestContext(request),
            pinned === undefined ? {} : { expectedVersion: pinned },
          )()
          if (E.isLeft(r) && isDomainError(r.left) && r.left.code === 'referral.not_found')
            throw notFound('Referral')
          must(r, pinned)
          return referralSummaryResponse(params.referralId, reply)
        },
      })
    }

    route(app, {
      method: 'GET',
      url: '/referrals/:referralId',
      tags: ['referrals'],
      summary: 'A referral with its PHI (for sender and current recipient; every read is audited)',
      description:
        'Former recipients see the record without PHI. `asOf` returns the referral as it was at that instant. Send `X-Purpose-Of-Use` (treatment, operations, audit, patient_request, legal) to record why PHI is read.',
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
        const summary = summaryFromState(
          loaded.state,
          loaded.version,
          last?.recordedAt ?? loaded.state.sentAt,
        )
        const detail = referralDetail(loaded, summary, access === 'phi')
        if (access === 'phi') return detail
        // A former recipient keeps the record of what it was sent, not where the referral went next.
        return {
          ...detail,
          referral: { ...detail.referral, recipientPracticeId: null },
          appointment: null,
          messages: [],
          attachments: [],
        }
      },
    })

    route(app, {
      method: 'GET',
      url: '/referrals/:referralId/history',
      tags: ['referrals'],
      summary: 'Every change of the referral with actor, time and previous values',
      params: ReferralParams,
      response: t.type({ referralId: ReferralId, entries: t.array(HistoryEntry) }),
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
        if (access === 'phi') return { referralId: params.referralId, entries }
        // A former recipient sees the history up to the moment it gave the referral back, not
        // where the referral went afterwards.
        const mine = new Set(
          actor.kind === 'user' ? actor.memberships.map((m) => m.practiceId as string) : [],
        )
        const end = loaded.events.findLastIndex(
          (e) =>
            (e.type === 'ReferralDeclined' || e.type === 'ReferralExpired') && mine.has(e.data.practiceId),
        )
        return { referralId: params.referralId, entries: entries.slice(0, end + 1) }
      },
    })

    route(app, {
      method: 'GET',
      url: '/referrals/:referralId/routing',
      tags: ['referrals'],
      summary: 'Why a pooled referral went where it went: candidates, loads, exclusions, tie-break',
      params: ReferralParams,
      response: t.type({ referralId: ReferralId, lines: t.array(t.string), decisions: t.number }),
      handler: async ({ params }, request) => {
        const actor = requireActor(request)
        const loaded = must(await engine.referrals.load(params.referralId)())
        if (accessOf(actor, loaded.state) === 'none' && !hasPlatformRole(actor, 'admin'))
          throw notFound('Referral')
        const explained = must(await routing.explain(params.referralId))
        return {
          referralId: params.referralId,
          lines: explained === null ? [] : [...explained.lines],
          decisions: explained?.decisions.length ?? 0,
        }
      },
    })

    const listFor = async (
      practiceId: PracticeId,
      query: t.TypeOf<typeof ListQuery>,
      request: FastifyRequest,
    ) => {
      const actor = requireActor(request)
      if (!isMemberOf(actor, practiceId)) throw notFound('Practice')
      const page = await engine.referralIndex.list({
        practiceId,
        box: query.box,
        ...(query.status === undefined ? {} : { status: [query.status] }),
        ...(query.urgency === undefined ? {} : { urgency: query.urgency }),
        ...(query.specialtyId === undefined ? {} : { specialtyId: query.specialtyId }),
        ...(query.categoryId === undefined ? {} : { categoryId: query.categoryId }),
        ...(query.patient === undefined ? {} : { patient: query.patient }),
        ...(query.sentFrom === undefined ? {} : { sentFrom: query.sentFrom }),
        ...(query.sentTo === undefined ? {} : { sentTo: query.sentTo }),
        ...(query.limit === undefined ? {} : { limit: query.limit }),
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      })
      if (E.isLeft(page)) throw new ProblemError(httpProblem('bad_request', 'The cursor is not valid.'))
      if (query.patient === undefined) return page.right
      // A patient search is a PHI lookup: it is audited, and it only matches referrals whose PHI the
      // practice may see now (a former recipient cannot test names against what it declined).
      if (actor.kind === 'user') {
        const purposeHeader = request.headers['x-purpose-of-use']
        must(
          await recordPhiAccess(engine, {
            userId: actor.userId,
            role: actor.memberships.find((m) => m.practiceId === practiceId)?.role ?? 'none',
            practiceId,
            referralId: null,
            patientId: null,
            purpose: Purpose.is(purposeHeader) ? purposeHeader : 'treatment',
            outcome: 'granted',
            resource: request.routeOptions.url ?? 'unknown',
            correlationId: unsafeId<CorrelationId>(String(request.id)),
            channel: 'api',
          }),
        )
      }
      return {
        ...page.right,
        items: page.right.items.filter(
          (s) => s.senderPracticeId === practiceId || s.recipientPracticeId === practiceId,
        ),
      }
    }

    route(app, {
      method: 'GET',
      url: '/practices/:practiceId/referrals',
      tags: ['referrals'],
      summary: "A practice's sent or received referrals (no PHI), filtered, newest first, cursor-paginated",
      description: '`patient` searches by patient name or health number through a keyed blind index.',
      params: PracticeParams,
      query: ListQuery,
      response: ReferralPage,
      handler: async ({ params, query }, request) => {
        const page = await listFor(params.practiceId, query, request)
        return { items: page.items.map(summaryView), nextCursor: page.nextCursor }
      },
    })

    route(app, {
      method: 'GET',
      url: '/practices/:practiceId/referrals.csv',
      tags: ['referrals'],
      summary: "CSV export of a practice's sent or received referrals (no PHI columns)",
      params: PracticeParams,
      query: ListQuery,
      handler: async ({ params, query }, request, reply) => {
        const rows: string[] = [
          'referral_id,status,fhir_task_status,urgency,specialty_id,category_id,subcategory_id,route,sender_practice_id,recipient_practice_id,sent_at,updated_at',
        ]
        let cursor = query.cursor
        for (;;) {
          const page = await listFor(
            params.practiceId,
            { ...query, limit: 200, ...(cursor === undefined ? {} : { cursor }) },
            request,
          )
          for (const s of page.items.map(summaryView)) {
            rows.push(
              [
                s.referralId,
                s.status,
                s.fhirTaskStatus,
                s.urgency,
                s.specialtyId,
                s.category.categoryId,
                s.category.subcategoryId ?? '',
                s.route,
                s.senderPracticeId,
                s.recipientPracticeId ?? '',
                s.sentAt,
                s.updatedAt,
              ]
                .map(csvCell)
                .join(','),
            )
          }
          if (page.nextCursor === null) break
          cursor = page.nextCursor
        }
        reply.header('content-type', 'text/csv; charset=utf-8')
        reply.header('content-disposition', `attachment; filename="${params.practiceId}-${query.box}.csv"`)
        return reply.send(`${rows.join('\r\n')}\r\n`)
      },
    })

    await registerAuditRoutes(app, { engine })
    if (deps.attachments !== undefined) {
      await registerAttachmentRoutes(app, {
        engine,
        store: deps.attachments,
        limits: deps.attachmentLimits ?? DEFAULT_ATTACHMENT_LIMITS,
      })
    }
  }

export { csvCell } from './csv.js'
