import { isLeft } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { Actor } from '../shared/actor.js'
import { type PracticeId, type UserId, unsafeId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { given } from '../testing/given.js'
import type { ConsentVersion } from './codecs.js'
import {
  canaryPhi,
  intakeId,
  linkA,
  linkAContext,
  linkB,
  metaAt,
  opened,
  patientId,
  publicIntake,
  referralId,
  staff,
  submitted,
  T0,
  T1,
} from './fixtures.js'
import { IntakeCommandPayload, type IntakeEvent, type IntakePhi } from './intake-codecs.js'
import { type IntakeCommand, type IntakeLinkContext, intakeDecider } from './intake-decider.js'

const spec = given(intakeDecider)
const T2 = '2026-03-03T09:00:00.000Z' as Instant
const appointmentAt = '2026-03-10T14:30:00.000Z' as Instant
const engine: Actor = { kind: 'system', component: 'program-funnel' }
const outsider: Actor = {
  kind: 'user',
  userId: unsafeId<UserId>('eve'),
  platformRoles: [],
  memberships: [{ practiceId: unsafeId<PracticeId>('other'), role: 'owner' }],
}

const open = (context: IntakeLinkContext | null = linkAContext, now: Instant = T0): IntakeCommand => ({
  type: 'OpenReferralLink',
  data: { intakeId, linkId: linkA },
  context: { link: context },
  meta: metaAt(publicIntake, now),
})

const submit = (
  overrides: Partial<Extract<IntakeCommand, { type: 'SubmitIntake' }>['data']> = {},
  context = linkAContext,
): IntakeCommand => ({
  type: 'SubmitIntake',
  data: {
    patientId,
    submittedBy: { kind: 'patient' },
    consentVersion: 1 as ConsentVersion,
    communication: { email: true, sms: false, phone: false, mail: false },
    phi: canaryPhi,
    ...overrides,
  },
  context: { link: context },
  meta: metaAt(publicIntake, T1),
})

const record = (payload: IntakeCommandPayload, actor: Actor = engine, now = T2): IntakeCommand =>
  ({ ...payload, meta: metaAt(actor, now) }) as IntakeCommand

const referred: IntakeEvent = { type: 'IntakeReferralSent', data: { intakeId, referralId, sentAt: T2 } }
const scheduled: IntakeEvent = {
  type: 'IntakeAppointmentScheduled',
  data: { intakeId, appointmentAt, scheduledAt: T2 },
}

describe('OpenReferralLink', () => {
  it('starts the intake stream with the link and its attribution as they are now', () => {
    spec([]).when(open()).thenEmits([opened()])
  })

  it('a reload of the same visit is a no-op; another link is refused', () => {
    spec([opened()]).when(open()).thenEmits([])
    spec([opened(intakeId, linkB)])
      .when(open())
      .thenFails('intake.already_opened')
  })

  it('refuses a paused link and a retired link with distinct errors, and an unknown link', () => {
    spec([])
      .when(open({ ...linkAContext, status: 'paused' }))
      .thenFails('intake.link_paused')
    spec([])
      .when(open({ ...linkAContext, status: 'retired' }))
      .thenFails('intake.link_retired')
    spec([]).when(open(null)).thenFails('intake.link_not_found')
  })

  it('refuses a context resolved for another link', () => {
    spec([])
      .when(open({ ...linkAContext, linkId: linkB }))
      .thenFails('intake.context_mismatch')
  })
})

describe('SubmitIntake', () => {
  it('records the consent version agreed to and when (the command clock), preferences and the PHI', () => {
    spec([opened()]).when(submit()).thenEmits([submitted()])
  })

  it('needs an opened intake, once', () => {
    spec([]).when(submit()).thenFails('intake.not_opened')
    spec([opened(), submitted()]).when(submit()).thenFails('intake.already_submitted')
  })

  it('refuses while the link is paused or retired (distinct errors)', () => {
    spec([opened()])
      .when(submit({}, { ...linkAContext, status: 'paused' }))
      .thenFails('intake.link_paused')
    spec([opened()])
      .when(submit({}, { ...linkAContext, status: 'retired' }))
      .thenFails('intake.link_retired')
  })

  it('must agree to the current consent version, which must exist', () => {
    spec([opened()])
      .when(submit({}, { ...linkAContext, currentConsentVersion: 2 as ConsentVersion }))
      .thenFails('intake.consent_outdated')
    spec([opened()])
      .when(submit({}, { ...linkAContext, currentConsentVersion: null }))
      .thenFails('intake.no_consent_published')
  })

  it('a caregiver records the relationship and their own name; a patient has no caregiver', () => {
    const withCaregiver: IntakePhi = { ...canaryPhi, caregiver: { givenName: 'Carey', familyName: 'Giver' } }
    const state = spec([opened()])
      .when(submit({ submittedBy: { kind: 'caregiver', relationship: 'parent' }, phi: withCaregiver }))
      .state()
    expect(state.exists && state.submittedBy).toEqual({ kind: 'caregiver', relationship: 'parent' })
    spec([opened()])
      .when(submit({ submittedBy: { kind: 'caregiver', relationship: 'parent' } }))
      .thenFails('intake.invalid')
    spec([opened()])
      .when(submit({ phi: withCaregiver }))
      .thenFails('intake.invalid')
  })

  it('a channel agreed to needs an address, and the error names the field, never the values', () => {
    const noEmail: IntakePhi = { patient: { givenName: 'Canaryname', familyName: 'Phisurname' } }
    const result = intakeDecider.decide(
      submit({ phi: noEmail, communication: { email: true, sms: false, phone: false, mail: false } }),
      [opened()].reduce(intakeDecider.evolve, intakeDecider.initialState),
    )
    expect(isLeft(result) && result.left.code).toBe('intake.invalid')
    expect(isLeft(result) && result.left.details).toEqual({ field: 'communication.email' })
    expect(JSON.stringify(result)).not.toMatch(/Canaryname|Phisurname/)
    spec([opened()])
      .when(submit({ communication: { email: false, sms: true, phone: false, mail: false } }))
      .thenFails('intake.invalid')
  })

  it('the state keeps no PHI, only the patient id and the non-identifying facts', () => {
    const state = spec([opened()]).when(submit()).state()
    expect(JSON.stringify(state)).not.toMatch(/Canaryname|Phisurname|canary@/)
    expect(state.exists && [state.stage, state.patientId, state.consent]).toEqual([
      'submitted',
      patientId,
      { version: 1, agreedAt: T1 },
    ])
  })
})

describe('conversion', () => {
  it('records referral sent, scheduled, completed, each at the command time', () => {
    spec([opened(), submitted()])
      .when(record({ type: 'RecordIntakeReferralSent', data: { referralId } }))
      .thenEmits([referred])
    spec([opened(), submitted(), referred])
      .when(record({ type: 'RecordIntakeAppointmentScheduled', data: { appointmentAt } }))
      .thenEmits([scheduled])
    spec([opened(), submitted(), referred, scheduled])
      .when(record({ type: 'RecordIntakeAppointmentCompleted', data: {} }, staff))
      .thenEmits([{ type: 'IntakeAppointmentCompleted', data: { intakeId, completedAt: T2 } }])
  })

  it('counts a no-show and allows rebooking after it', () => {
    const noShow: IntakeEvent = { type: 'IntakeNoShowRecorded', data: { intakeId, recordedAt: T2 } }
    spec([opened(), submitted(), referred, scheduled])
      .when(record({ type: 'RecordIntakeNoShow', data: {} }))
      .thenEmits([noShow])
    spec([opened(), submitted(), referred, scheduled, noShow])
      .when(record({ type: 'RecordIntakeAppointmentScheduled', data: { appointmentAt } }))
      .thenEmits([scheduled])
  })

  it('restating a stage is a no-op; skipping one is refused', () => {
    spec([opened(), submitted(), referred])
      .when(record({ type: 'RecordIntakeReferralSent', data: { referralId } }))
      .thenEmits([])
    spec([opened(), submitted(), referred, scheduled])
      .when(record({ type: 'RecordIntakeAppointmentScheduled', data: { appointmentAt } }))
      .thenEmits([])
    spec([opened()])
      .when(record({ type: 'RecordIntakeReferralSent', data: { referralId } }))
      .thenFails('intake.invalid_transition')
    spec([opened(), submitted()])
      .when(record({ type: 'RecordIntakeAppointmentCompleted', data: {} }))
      .thenFails('intake.invalid_transition')
  })

  it('only the engine or a member of the practice records conversions', () => {
    spec([opened(), submitted()])
      .when(record({ type: 'RecordIntakeReferralSent', data: { referralId } }, outsider))
      .thenFails('intake.forbidden')
  })
})

describe('IntakeCommandPayload', () => {
  it('rejects an unknown relationship and a submission without communication preferences', () => {
    const base = {
      patientId: 'p1',
      submittedBy: { kind: 'caregiver', relationship: 'neighbour' },
      consentVersion: 1,
      communication: { email: false, sms: false, phone: false, mail: false },
      phi: { patient: { givenName: 'A', familyName: 'B' } },
    }
    expect(isLeft(IntakeCommandPayload.decode({ type: 'SubmitIntake', data: base }))).toBe(true)
    const { communication: _, ...noPrefs } = { ...base, submittedBy: { kind: 'patient' } }
    expect(isLeft(IntakeCommandPayload.decode({ type: 'SubmitIntake', data: noPrefs }))).toBe(true)
    expect(
      isLeft(
        IntakeCommandPayload.decode({
          type: 'SubmitIntake',
          data: { ...base, submittedBy: { kind: 'patient' } },
        }),
      ),
    ).toBe(false)
  })

  it('refuses a phi object posing as the redaction marker', () => {
    const data = {
      patientId: 'p1',
      submittedBy: { kind: 'patient' },
      consentVersion: 1,
      communication: { email: false, sms: false, phone: false, mail: false },
      phi: { redacted: true, patient: { givenName: 'A', familyName: 'B' } },
    }
    expect(isLeft(IntakeCommandPayload.decode({ type: 'SubmitIntake', data }))).toBe(true)
  })
})
