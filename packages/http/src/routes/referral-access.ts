import {
  type Actor,
  type CorrelationId,
  canAccessReferral,
  canSeePhi,
  type Engine,
  hasPlatformRole,
  PHI_PURPOSES,
  type ReferralId,
  recordPhiAccess,
  unsafeId,
} from '@referrals/core'
import type { FastifyRequest } from 'fastify'
import * as t from 'io-ts'
import { must } from './failures.js'

type ReferralStateOf = Parameters<typeof canSeePhi>[0]

export const Purpose = t.keyof(
  Object.fromEntries(PHI_PURPOSES.map((p) => [p, null])) as Record<(typeof PHI_PURPOSES)[number], null>,
)

/** How much of a referral an actor may see: all of it, the non-PHI record, or nothing. */
export const accessOf = (actor: Actor, state: ReferralStateOf): 'phi' | 'limited' | 'none' => {
  if (!state.exists) return 'none'
  if (hasPlatformRole(actor, 'auditor')) return 'phi'
  if (actor.kind !== 'user') return 'none'
  if (actor.memberships.some((m) => canSeePhi(state, m.practiceId))) return 'phi'
  if (actor.memberships.some((m) => canAccessReferral(state, m.practiceId))) return 'limited'
  return 'none'
}

const ACCESS_RANK = { none: 0, limited: 1, phi: 2 } as const
/** The lesser of two access levels. */
export const stricterAccess = (
  a: 'phi' | 'limited' | 'none',
  b: 'phi' | 'limited' | 'none',
): 'phi' | 'limited' | 'none' => (ACCESS_RANK[a] <= ACCESS_RANK[b] ? a : b)

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
    const purposeHeader = request.headers['x-purpose-of-use']
    const purpose = Purpose.is(purposeHeader)
      ? purposeHeader
      : hasPlatformRole(actor, 'auditor')
        ? 'audit'
        : 'treatment'
    const membership = state.exists
      ? actor.memberships.find((m) => canAccessReferral(state, m.practiceId))
      : undefined
    must(
      await recordPhiAccess(engine, {
        userId: actor.userId,
        role: membership?.role ?? actor.platformRoles[0] ?? 'none',
        practiceId: membership?.practiceId ?? null,
        referralId,
        patientId: state.exists ? state.patientId : null,
        purpose,
        outcome,
        resource: request.routeOptions.url ?? 'unknown',
        correlationId: unsafeId<CorrelationId>(String(request.id)),
        channel: 'api',
      }),
    )
  }
