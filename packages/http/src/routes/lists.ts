import type { Engine, PracticeId } from '@referrals/core'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import { requireActor } from '../auth.js'
import { route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'
import { auditPatientSearch, requirePracticeMember, searchableBy } from './access.js'
import { ListQuery, PracticeParams } from './codecs.js'
import { csvCell } from './csv.js'
import { ReferralPage, summaryView } from './views.js'

/** `/practices/:practiceId/referrals` and its CSV export: a practice's sent or received referrals. */
export const listRoutes: FastifyPluginAsync<{ readonly engine: Engine }> = async (app, { engine }) => {
  const listFor = async (practiceId: PracticeId, query: ListQuery, request: FastifyRequest) => {
    const actor = requireActor(request)
    requirePracticeMember(actor, practiceId)
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
    await auditPatientSearch(engine, request, actor, practiceId)
    return { ...page.right, items: searchableBy(page.right.items, practiceId) }
  }

  route(app, {
    method: 'GET',
    url: '/practices/:practiceId/referrals',
    operationId: 'listPracticeReferrals',
    tags: ['referrals'],
    summary: "A practice's sent or received referrals (no PHI), filtered, newest first, cursor-paginated",
    description:
      'For members of the practice. `box` is required: `sent` or `received`. `patient` searches by patient name or health number through a keyed blind index (the search is recorded in the access log). Pass `nextCursor` back as `cursor` for the next page.',
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
    operationId: 'exportPracticeReferralsCsv',
    produces: 'text/csv',
    description: 'The same filters as the list, every page, one referral per row (RFC 4180; no PHI columns).',
    responseDescription: 'text/csv, one referral per row',
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
}
