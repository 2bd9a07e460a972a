import {
  auditStreamId,
  type CorrelationId,
  type Engine,
  hasPlatformRole,
  type Instant,
  InstantFromRfc3339,
  PatientId,
  PhiAccessed,
  PracticeId,
  ReferralId,
  UserId,
  unsafeId,
} from '@referrals/core'
import type { FastifyPluginAsync } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { route } from '../openapi/route.js'
import { httpProblem, ProblemError } from '../problem.js'
import { csvCell } from './csv.js'
import { forbidden, must } from './failures.js'

const DAY_MS = 86_400_000
/** At most this many daily audit streams are read for one export. */
export const AUDIT_EXPORT_MAX_DAYS = 366
const PAGE = 1000

const AuditQuery = t.intersection([
  t.type({ from: InstantFromRfc3339, to: InstantFromRfc3339 }),
  t.partial({ userId: UserId, practiceId: PracticeId, referralId: ReferralId, patientId: PatientId }),
])

const HEADER =
  'at,user_id,role,practice_id,referral_id,patient_id,purpose,outcome,channel,resource,correlation_id'

/**
 * `GET /audit.csv`: the PHI access log (who read which referral, when, why, granted or denied) for
 * platform auditors, from the daily `audit-YYYY-MM-DD` streams in `[from, to)`. The export is
 * itself recorded as an access with purpose `audit`.
 */
export const auditRoutes: FastifyPluginAsync<{ readonly engine: Engine }> = async (app, { engine }) => {
  route(app, {
    method: 'GET',
    url: '/audit.csv',
    operationId: 'exportAuditCsv',
    produces: 'text/csv',
    tags: ['audit'],
    summary: 'CSV export of the PHI access log (platform auditors; the export itself is logged)',
    description: `\`from\` (inclusive) and \`to\` (exclusive) are instants at most ${AUDIT_EXPORT_MAX_DAYS} days apart; filter by \`userId\`, \`practiceId\`, \`referralId\` or \`patientId\`.`,
    query: AuditQuery,
    responseDescription: 'text/csv, one access per row',
    authorize: (request) => {
      const actor = requireActor(request)
      if (actor.kind !== 'user' || !hasPlatformRole(actor, 'auditor')) throw forbidden()
    },
    handler: async ({ query }, request, reply) => {
      const actor = requireActor(request)
      if (actor.kind !== 'user') throw forbidden()
      const from = Date.parse(query.from)
      const to = Date.parse(query.to)
      if (!(from < to) || to - from > AUDIT_EXPORT_MAX_DAYS * DAY_MS)
        throw new ProblemError(
          httpProblem('bad_request', `from must precede to, at most ${AUDIT_EXPORT_MAX_DAYS} days apart.`),
        )
      must(
        await engine.recordPhiAccess({
          userId: actor.userId,
          role: 'auditor',
          practiceId: query.practiceId ?? null,
          referralId: query.referralId ?? null,
          patientId: query.patientId ?? null,
          purpose: 'audit',
          outcome: 'granted',
          channel: 'api',
          resource: '/audit.csv',
          correlationId: unsafeId<CorrelationId>(String(request.id)),
        }),
      )
      const rows = [HEADER]
      const firstDay = Date.parse(query.from.slice(0, 10))
      for (let day = firstDay; day < to; day += DAY_MS) {
        const streamId = auditStreamId(new Date(day).toISOString() as Instant)
        for (let fromVersion = 1; ; fromVersion += PAGE) {
          const page = must(await engine.store.readStream(streamId, { fromVersion, maxCount: PAGE })())
          for (const stored of page) {
            const decoded = PhiAccessed.decode({ type: stored.type, data: stored.data })
            if (E.isLeft(decoded)) continue
            const a = decoded.right.data
            if (a.at < query.from || a.at >= query.to) continue
            if (query.userId !== undefined && a.userId !== query.userId) continue
            if (query.practiceId !== undefined && a.practiceId !== query.practiceId) continue
            if (query.referralId !== undefined && a.referralId !== query.referralId) continue
            if (query.patientId !== undefined && a.patientId !== query.patientId) continue
            rows.push(
              [
                a.at,
                a.userId,
                a.role,
                a.practiceId ?? '',
                a.referralId ?? '',
                a.patientId ?? '',
                a.purpose,
                a.outcome,
                a.channel,
                a.resource,
                a.correlationId,
              ]
                .map(csvCell)
                .join(','),
            )
          }
          if (page.length < PAGE) break
        }
      }
      reply.header('content-type', 'text/csv; charset=utf-8')
      reply.header(
        'content-disposition',
        `attachment; filename="audit-${query.from.slice(0, 10)}-${query.to.slice(0, 10)}.csv"`,
      )
      return reply.send(`${rows.join('\r\n')}\r\n`)
    },
  })
}
