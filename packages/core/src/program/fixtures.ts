import type { Actor } from '../shared/actor.js'
import type { CommandMeta } from '../shared/decider.js'
import {
  type CommandId,
  type CorrelationId,
  type PracticeId,
  type ProgramId,
  type ReferralLinkId,
  type UserId,
  unsafeId,
} from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import type { ConsentVersion, ProgramEvent, ProgramTarget } from './codecs.js'
import type { LinkCode } from './link-code.js'

/** Shared test values for the program module: a practice `clinic-1` owned by alice, one program. */
export const practiceId = unsafeId<PracticeId>('clinic-1')
export const programId = unsafeId<ProgramId>('prog-1')
export const linkA = unsafeId<ReferralLinkId>('link-a')
export const linkB = unsafeId<ReferralLinkId>('link-b')
export const codeA = 'AAAA000001' as LinkCode
export const codeB = 'BBBB000002' as LinkCode
export const T0 = '2026-03-01T09:00:00.000Z' as Instant
export const T1 = '2026-03-02T09:00:00.000Z' as Instant

export const owner: Actor = {
  kind: 'user',
  userId: unsafeId<UserId>('alice'),
  platformRoles: [],
  memberships: [{ practiceId, role: 'owner' }],
}
export const staff: Actor = {
  kind: 'user',
  userId: unsafeId<UserId>('carol'),
  platformRoles: [],
  memberships: [{ practiceId, role: 'staff' }],
}
export const admin: Actor = {
  kind: 'user',
  userId: unsafeId<UserId>('root'),
  platformRoles: ['admin'],
  memberships: [],
}
export const publicIntake: Actor = { kind: 'system', component: 'public-intake' }

export const metaAt = (actor: Actor, now: Instant = T0): CommandMeta => ({
  commandId: unsafeId<CommandId>('cmd-1'),
  actor,
  now,
  correlationId: unsafeId<CorrelationId>('corr-1'),
})

export const target: ProgramTarget = { kind: 'direct', practiceId: unsafeId<PracticeId>('spec-1') }

export const programCreated: ProgramEvent = {
  type: 'ProgramCreated',
  data: { programId, practiceId, name: 'New patients', target, createdAt: T0 },
}
export const consentV1: ProgramEvent = {
  type: 'ConsentVersionPublished',
  data: {
    programId,
    version: 1 as ConsentVersion,
    consentText: 'I agree to be contacted about scheduling.',
    disclosureText: 'North Clinic, 1 Main St. General scheduling only.',
    publishedAt: T0,
  },
}
export const linkACreated: ProgramEvent = {
  type: 'ReferralLinkCreated',
  data: {
    programId,
    linkId: linkA,
    code: codeA,
    attribution: { channel: 'word-of-mouth', campaign: 'spring', serviceLine: 'dermatology' },
    createdAt: T0,
  },
}
