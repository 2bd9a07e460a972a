import {
  type Actor,
  type CorrelationId,
  canAccessReferral,
  canSeePhi,
  type Engine,
  hasPlatformRole,
  isMemberOf,
  type Loaded,
  PatientId,
  PHI_PURPOSES,
  type PracticeId,
  practicePatientId,
  type ReferralEvent,
  type ReferralId,
  type ReferralState,
  unsafeId,
} from '@referrals/core'
import type { FastifyRequest } from 'fastify'
import * as t from 'io-ts'
import { httpProblem, ProblemError } from '../problem.js'
import { must, notFound } from './failures.js'
import type { HistoryEntry, ReferralDetailView } from './views.js'

/**
 * The access rules of the resource routes, in one place: who may see a practice, how much of a
 * referral a caller may see (all of it, the record without PHI, or nothing), what a former
 * recipient keeps, how patient ids are scoped, and the audit of PHI reads. Routes call these and
 * decide nothing about access themselves.
 */

type ReferralStateOf = Parameters<typeof canSeePhi>[0]

/** How much of a referral an actor may see: all of it, the non-PHI record, or nothing. */
export type Access = 'phi' | 'limited' | 'none'

export const Purpose = t.keyof(
  Object.fromEntries(PHI_PURPOSES.map((p) => [p, null])) as Record<(typeof PHI_PURPOSES)[number], null>,
)

// ---------------------------------------------------------------- accounts

/** Auditor accounts are read-only (SPEC §3): no command, upload or settings change. A preHandler hook. */
export const auditorsAreReadOnly = async (request: FastifyRequest): Promise<void> => {
  const actor = request.actor
  if (request.method === 'GET' || request.method === 'HEAD' || actor === null || actor.kind !== 'user') return
  if (hasPlatformRole(actor, 'auditor')) {
    throw new ProblemError(httpProblem('forbidden', 'Auditor accounts are read-only.'))
  }
}

// ---------------------------------------------------------------- practices

/**
 * A practice is visible to its members, platform admins and auditors; to anyone else it does not
 * exist (404, so its existence is not disclosed). Used by the practice read and every practice
 * command.
 */
export const requirePracticeVisible = (actor: Actor, practiceId: PracticeId): void => {
  if (isMemberOf(actor, practiceId) || hasPlatformRole(actor, 'admin') || hasPlatformRole(actor, 'auditor'))
    return
  throw notFound('Practice')
}

/** A practice's referral lists are for its members only (404 otherwise). */
export const requirePracticeMember = (actor: Actor, practiceId: PracticeId): void => {
  if (!isMemberOf(actor, practiceId)) throw notFound('Practice')
}

// ---------------------------------------------------------------- referral programs

/**
 * A referral program is visible where its practice is (members, platform admins, auditors); to
 * anyone else it does not exist (404). Managing it is for the practice's owners: the program
 * decider refuses everyone else (403), and auditors are read-only.
 */
export const requireProgramVisible = (actor: Actor, practiceId: PracticeId): void => {
  if (isMemberOf(actor, practiceId) || hasPlatformRole(actor, 'admin') || hasPlatformRole(actor, 'auditor'))
    return
  throw notFound('Program')
}

// ---------------------------------------------------------------- patient ids

/**
 * The stored patient id: the client's own id scoped by the sending practice
 * (`<senderPracticeId>:<patientId>`), so two practices using the same local id never share a data
 * key, a forgetting or an audit trail. Too long together: 400 on `body.patientId`.
 */
export const scopedPatientId = (senderPracticeId: PracticeId, patientId: string): PatientId => {
  const scoped = practicePatientId(senderPracticeId, patientId)
  if (PatientId.is(scoped)) return scoped
  throw new ProblemError(
    httpProblem('validation_failed', 'The request body is invalid.', {
      errors: [{ path: 'body.patientId', expected: 'at most 127 characters together with senderPracticeId' }],
    }),
  )
}

// ---------------------------------------------------------------- referrals

export const accessOf = (actor: Actor, state: ReferralStateOf): Access => {
  if (!state.exists) return 'none'
  if (hasPlatformRole(actor, 'auditor')) return 'phi'
  if (actor.kind !== 'user') return 'none'
  if (actor.memberships.some((m) => canSeePhi(state, m.practiceId))) return 'phi'
  if (actor.memberships.some((m) => canAccessReferral(state, m.practiceId))) return 'limited'
  return 'none'
}

const ACCESS_RANK = { none: 0, limited: 1, phi: 2 } as const
/** The lesser of two access levels. */
export const stricterAccess = (a: Access, b: Access): Access => (ACCESS_RANK[a] <= ACCESS_RANK[b] ? a : b)

/**
 * A referral the caller has no part in does not exist for it (404). `orAdmin`: platform admins
 * may see it too (the routing explanation).
 */
export const requireReferralVisible = (
  actor: Actor,
  state: ReferralStateOf,
  options: { readonly orAdmin?: boolean } = {},
): void => {
  if (accessOf(actor, state) !== 'none') return
  if (options.orAdmin === true && hasPlatformRole(actor, 'admin')) return
  throw notFound('Referral')
}

/**
 * What a caller without PHI access (a former recipient) sees of a referral's detail: the record
 * of what it was sent, not where the referral went next, nor appointment, messages or attachments.
 */
export const detailFor = (detail: ReferralDetailView, access: Access): ReferralDetailView =>
  access === 'phi'
    ? detail
    : {
        ...detail,
        referral: { ...detail.referral, recipientPracticeId: null },
        appointment: null,
        messages: [],
        attachments: [],
      }

/**
 * The history a caller may see: all of it with PHI access; a former recipient sees it up to the
 * moment it gave the referral back (its own decline or expiry), not where the referral went
 * afterwards. `entries` are already without PHI unless `access` is `phi`.
 */
export const historyFor = (
  actor: Actor,
  loaded: Loaded<ReferralEvent, ReferralState>,
  entries: readonly HistoryEntry[],
  access: Access,
): readonly HistoryEntry[] => {
  if (access === 'phi') return entries
  const mine = new Set(actor.kind === 'user' ? actor.memberships.map((m) => m.practiceId as string) : [])
  const end = loaded.events.findLastIndex(
    (e) => (e.type === 'ReferralDeclined' || e.type === 'ReferralExpired') && mine.has(e.data.practiceId),
  )
  return entries.slice(0, end + 1)
}

/**
 * A patient search only matches referrals whose PHI the practice may see now (a former recipient
 * cannot test names against what it declined).
 */
export const searchableBy = <S extends { senderPracticeId: string; recipientPracticeId: string | null }>(
  items: readonly S[],
  practiceId: PracticeId,
): S[] => items.filter((s) => s.senderPracticeId === practiceId || s.recipientPracticeId === practiceId)

// ---------------------------------------------------------------- audit of PHI reads

const purposeOf = (request: FastifyRequest, fallback: (typeof PHI_PURPOSES)[number]) => {
  const header = request.headers['x-purpose-of-use']
  return Purpose.is(header) ? header : fallback
}

/**
 * Records a PHI read (granted or denied) as a `PhiAccessed` audit event, before any PHI leaves the
 * process. The purpose comes from `X-Purpose-Of-Use` (default `audit` for auditors, else `treatment`).
 */
export const phiReadAuditor =
  (engine: Engine) =>
  async (
    request: FastifyRequest,
    actor: Actor,
    state: ReferralStateOf,
    referralId: ReferralId,
    outcome: 'granted' | 'denied',
  ): Promise<void> => {
    if (actor.kind !== 'user') return
    const membership = state.exists
      ? actor.memberships.find((m) => canAccessReferral(state, m.practiceId))
      : undefined
    must(
      await engine.recordPhiAccess({
        userId: actor.userId,
        role: membership?.role ?? actor.platformRoles[0] ?? 'none',
        practiceId: membership?.practiceId ?? null,
        referralId,
        patientId: state.exists ? state.patientId : null,
        purpose: purposeOf(request, hasPlatformRole(actor, 'auditor') ? 'audit' : 'treatment'),
        outcome,
        resource: request.routeOptions.url ?? 'unknown',
        correlationId: unsafeId<CorrelationId>(String(request.id)),
        channel: 'api',
      }),
    )
  }

/** A patient search in a practice's lists is a PHI lookup: it is audited like a read. */
export const auditPatientSearch = async (
  engine: Engine,
  request: FastifyRequest,
  actor: Actor,
  practiceId: PracticeId,
): Promise<void> => {
  if (actor.kind !== 'user') return
  must(
    await engine.recordPhiAccess({
      userId: actor.userId,
      role: actor.memberships.find((m) => m.practiceId === practiceId)?.role ?? 'none',
      practiceId,
      referralId: null,
      patientId: null,
      purpose: purposeOf(request, 'treatment'),
      outcome: 'granted',
      resource: request.routeOptions.url ?? 'unknown',
      correlationId: unsafeId<CorrelationId>(String(request.id)),
      channel: 'api',
    }),
  )
}
