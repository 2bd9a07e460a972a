import * as t from 'io-ts'
import { PracticeId, UserId } from './ids.js'

export const PracticeRole = t.keyof({ owner: null, specialist: null, staff: null })
export type PracticeRole = t.TypeOf<typeof PracticeRole>

export const PlatformRole = t.keyof({ admin: null, auditor: null })
export type PlatformRole = t.TypeOf<typeof PlatformRole>

export const Membership = t.readonly(t.type({ practiceId: PracticeId, role: PracticeRole }))
export type Membership = t.TypeOf<typeof Membership>

/**
 * Who issues a command. `memberships` are resolved by the application layer from the practice
 * streams (never taken from the client), so deciders can check "a member acting for a practice"
 * without I/O. `system` is the engine itself (scheduler, router process manager).
 */
export const Actor = t.union([
  t.readonly(
    t.type({
      kind: t.literal('user'),
      userId: UserId,
      platformRoles: t.readonlyArray(PlatformRole),
      memberships: t.readonlyArray(Membership),
    }),
  ),
  t.readonly(t.type({ kind: t.literal('system'), component: t.string })),
])
export type Actor = t.TypeOf<typeof Actor>

export const isMemberOf = (actor: Actor, practiceId: PracticeId): boolean =>
  actor.kind === 'user' && actor.memberships.some((m) => m.practiceId === practiceId)

/**
 * The engine converting a public referral-program intake into a referral: the one system actor
 * that sends referrals, on behalf of the program's own practice (the application layer resolves
 * that practice from the program stream, never from the client).
 */
export const PUBLIC_INTAKE_ACTOR: Actor = { kind: 'system', component: 'public-intake' }

/** May `actor` send a referral for `practiceId`: a member of it, or the public intake engine. */
export const maySendFor = (actor: Actor, practiceId: PracticeId): boolean =>
  isMemberOf(actor, practiceId) ||
  (actor.kind === 'system' && actor.component === PUBLIC_INTAKE_ACTOR.component)

export const hasPlatformRole = (actor: Actor, role: PlatformRole): boolean =>
  actor.kind === 'user' && actor.platformRoles.includes(role)
