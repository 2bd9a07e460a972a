import * as t from 'io-ts'
import { boundedText, phiPayload, ReferralCalendarDate, ReferralRedactedPhi } from '../referral/codecs.js'
import { IntakeId, PatientId, PracticeId, ProgramId, ReferralId, ReferralLinkId } from '../shared/ids.js'
import { Instant } from '../shared/time.js'
import { ConsentVersion, LinkAttribution } from './codecs.js'

const strict = <P extends t.Props>(props: P) => t.exact(t.type(props))
const optional = <P extends t.Props>(props: P) => t.exact(t.partial(props))

// ---------------------------------------------------------------------------------------------
// PHI: everything that identifies the patient or the caregiver, sealed with the patient's key
// ---------------------------------------------------------------------------------------------

const contactProps = {
  email: boundedText('Email', 254),
  phone: boundedText('Phone', 40),
}
const nameProps = {
  givenName: boundedText('GivenName', 200),
  familyName: boundedText('FamilyName', 200),
}

export const IntakePerson = t.readonly(
  t.intersection([strict(nameProps), optional({ dateOfBirth: ReferralCalendarDate, ...contactProps })]),
)
export type IntakePerson = t.TypeOf<typeof IntakePerson>

export const IntakeCaregiver = t.readonly(t.intersection([strict(nameProps), optional(contactProps)]))
export type IntakeCaregiver = t.TypeOf<typeof IntakeCaregiver>

/** The PHI of an intake. Stored only sealed under the patient's data key; forgettable. */
export const IntakePhi = phiPayload(
  t.readonly(t.intersection([strict({ patient: IntakePerson }), optional({ caregiver: IntakeCaregiver })])),
)
export type IntakePhi = t.TypeOf<typeof IntakePhi>

// ---------------------------------------------------------------------------------------------
// Not PHI: who filled the form in (as a kind), what they agreed to, how they may be contacted
// ---------------------------------------------------------------------------------------------

export const CaregiverRelationship = t.keyof({
  parent: null,
  child: null,
  spouse_or_partner: null,
  sibling: null,
  other_family: null,
  legal_guardian: null,
  friend: null,
  other: null,
})
export type CaregiverRelationship = t.TypeOf<typeof CaregiverRelationship>

export const IntakeSubmitter = t.union([
  t.readonly(strict({ kind: t.literal('patient') })),
  t.readonly(strict({ kind: t.literal('caregiver'), relationship: CaregiverRelationship })),
])
export type IntakeSubmitter = t.TypeOf<typeof IntakeSubmitter>

/**
 * Per channel: may the clinic contact the person this way (reminders, scheduling)? Kept outside
 * the PHI so the reminder process can choose channels without opening it; the addresses
 * themselves are PHI.
 */
export const CommunicationPreferences = t.readonly(
  strict({ email: t.boolean, sms: t.boolean, phone: t.boolean, mail: t.boolean }),
)
export type CommunicationPreferences = t.TypeOf<typeof CommunicationPreferences>

// ---------------------------------------------------------------------------------------------
// Commands (on stream `intake-<intakeId>`)
// ---------------------------------------------------------------------------------------------

const command = <T extends string, D extends t.Mixed>(type: T, data: D) =>
  t.readonly(strict({ type: t.literal(type), data }))

/** `intakeId` is drawn by the application layer from the IdGenerator when the page is served. */
export const OpenReferralLinkPayload = command(
  'OpenReferralLink',
  t.readonly(strict({ intakeId: IntakeId, linkId: ReferralLinkId })),
)
/** `patientId` is assigned by the application layer (a new patient, or one it matched). */
export const SubmitIntakePayload = command(
  'SubmitIntake',
  t.readonly(
    strict({
      patientId: PatientId,
      submittedBy: IntakeSubmitter,
      consentVersion: ConsentVersion,
      communication: CommunicationPreferences,
      phi: IntakePhi,
    }),
  ),
)
export const RecordIntakeReferralSentPayload = command(
  'RecordIntakeReferralSent',
  t.readonly(strict({ referralId: ReferralId })),
)
export const RecordIntakeAppointmentScheduledPayload = command(
  'RecordIntakeAppointmentScheduled',
  t.readonly(strict({ appointmentAt: Instant })),
)
export const RecordIntakeAppointmentCompletedPayload = command(
  'RecordIntakeAppointmentCompleted',
  t.readonly(strict({})),
)
export const RecordIntakeNoShowPayload = command('RecordIntakeNoShow', t.readonly(strict({})))

export const IntakeCommandPayload = t.union([
  OpenReferralLinkPayload,
  SubmitIntakePayload,
  RecordIntakeReferralSentPayload,
  RecordIntakeAppointmentScheduledPayload,
  RecordIntakeAppointmentCompletedPayload,
  RecordIntakeNoShowPayload,
])
export type IntakeCommandPayload = t.TypeOf<typeof IntakeCommandPayload>
export type IntakeCommandType = IntakeCommandPayload['type']

// ---------------------------------------------------------------------------------------------
// Events: the funnel of one person through one link, each stage time-stamped
// ---------------------------------------------------------------------------------------------

const event = <T extends string, P extends t.Props>(type: T, props: P) =>
  t.readonly(strict({ type: t.literal(type), data: t.readonly(strict({ intakeId: IntakeId, ...props })) }))

/** The first event of an intake stream; the link's attribution is copied as it was when opened. */
export const ReferralLinkOpened = event('ReferralLinkOpened', {
  programId: ProgramId,
  practiceId: PracticeId,
  linkId: ReferralLinkId,
  attribution: LinkAttribution,
  openedAt: Instant,
})
export const IntakeSubmitted = event('IntakeSubmitted', {
  patientId: PatientId,
  submittedBy: IntakeSubmitter,
  consent: t.readonly(strict({ version: ConsentVersion, agreedAt: Instant })),
  communication: CommunicationPreferences,
  phi: t.union([IntakePhi, ReferralRedactedPhi]),
  submittedAt: Instant,
})
export const IntakeReferralSent = event('IntakeReferralSent', { referralId: ReferralId, sentAt: Instant })
export const IntakeAppointmentScheduled = event('IntakeAppointmentScheduled', {
  appointmentAt: Instant,
  scheduledAt: Instant,
})
export const IntakeAppointmentCompleted = event('IntakeAppointmentCompleted', { completedAt: Instant })
export const IntakeNoShowRecorded = event('IntakeNoShowRecorded', { recordedAt: Instant })

export const IntakeEvent = t.union([
  ReferralLinkOpened,
  IntakeSubmitted,
  IntakeReferralSent,
  IntakeAppointmentScheduled,
  IntakeAppointmentCompleted,
  IntakeNoShowRecorded,
])
export type IntakeEvent = t.TypeOf<typeof IntakeEvent>
export type IntakeEventType = IntakeEvent['type']
