import type { Actor } from '../shared/actor.js'
import type { CommandMeta } from '../shared/decider.js'
import {
  type CommandId,
  type CorrelationId,
  type IntakeId,
  type PatientId,
  type PracticeId,
  type ProgramId,
  type ReferralId,
  type ReferralLinkId,
  type UserId,
  unsafeId,
} from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import type { ConsentVersion, ProgramEvent, ProgramTarget } from './codecs.js'
import type { IntakeEvent, IntakePhi } from './intake-codecs.js'
import type { IntakeLinkContext } from './intake-decider.js'
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

export const intakeId = unsafeId<IntakeId>('in-1')
export const patientId = unsafeId<PatientId>('pat-1')
export const referralId = unsafeId<ReferralId>('ref-1')

/** The link context of `link-a` while active, with consent version 1 current. */
export const linkAContext: IntakeLinkContext = {
  programId,
  practiceId,
  linkId: linkA,
  status: 'active',
  attribution: { channel: 'word-of-mouth', campaign: 'spring', serviceLine: 'dermatology' },
  currentConsentVersion: 1 as ConsentVersion,
}

export const opened = (
  id: IntakeId = intakeId,
  linkId: ReferralLinkId = linkA,
  at: Instant = T0,
): IntakeEvent => ({
  type: 'ReferralLinkOpened',
  data: { intakeId: id, programId, practiceId, linkId, attribution: linkAContext.attribution, openedAt: at },
})

/** Canary PHI: tests look for these strings where PHI must not be. */
export const canaryPhi: IntakePhi = {
  patient: {
    givenName: 'Canaryname',
    familyName: 'Phisurname',
    dateOfBirth: '1980-02-29',
    email: 'canary@example.org',
  },
}

export const submitted = (id: IntakeId = intakeId, at: Instant = T1): IntakeEvent => ({
  type: 'IntakeSubmitted',
  data: {
    intakeId: id,
    patientId,
    submittedBy: { kind: 'patient' },
    consent: { version: 1 as ConsentVersion, agreedAt: at },
    communication: { email: true, sms: false, phone: false, mail: false },
    phi: canaryPhi,
    submittedAt: at,
  },
})
