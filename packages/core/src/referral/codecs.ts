import * as t from 'io-ts'
import { CodingSystem } from '../catalog/codecs.js'
import { CategoryRef, Urgency } from '../shared/domain-types.js'
import {
  AttachmentId,
  InsuranceNetworkId,
  MessageId,
  PatientId,
  PracticeId,
  ReferralId,
  RegionId,
  SpecialtyId,
} from '../shared/ids.js'
import { Instant } from '../shared/time.js'

// ---------------------------------------------------------------------------------------------
// Scalar codecs
// ---------------------------------------------------------------------------------------------

/** JSON Schema keywords for the refinements below, for whoever generates OpenAPI from the codecs. */
const schemaHints: Array<readonly [t.Any, Readonly<Record<string, unknown>>]> = []

/**
 * `base` narrowed by `predicate`, as an io-ts `RefinementType` so schema generators can see the
 * base type. Failures carry the codec name only (the reporter never prints values).
 */
const refine = <A, O>(
  base: t.Type<A, O, unknown>,
  predicate: (a: A) => boolean,
  name: string,
  hint: Readonly<Record<string, unknown>>,
): t.RefinementType<t.Type<A, O, unknown>, A, O, unknown> => {
  const codec = new t.RefinementType<t.Type<A, O, unknown>, A, O, unknown>(
    name,
    (u): u is A => base.is(u) && predicate(u),
    (u, c) => {
      const result = base.validate(u, c)
      return result._tag === 'Right' && !predicate(result.right) ? t.failure(u, c) : result
    },
    base.encode,
    base,
    predicate,
  )
  schemaHints.push([codec, hint])
  return codec
}

/** A string of 1..`max` characters that is not only whitespace. */
export const boundedText = (name: string, max: number) =>
  refine(t.string, (s) => s.trim().length > 0 && s.length <= max, name, { minLength: 1, maxLength: max })

const isCalendarDate = (s: string): boolean => {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s)
  if (m === null) return false
  const year = Number(m[1])
  const month = Number(m[2])
  const day = Number(m[3])
  if (month < 1 || month > 12 || day < 1) return false
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0
  return day <= days
}

/** A calendar date `YYYY-MM-DD` (a date of birth: no time, no zone). */
export const ReferralCalendarDate = refine(t.string, isCalendarDate, 'CalendarDate', { format: 'date' })

const positiveInt = (name: string, max: number) =>
  refine(t.number, (n) => Number.isInteger(n) && n >= 1 && n <= max, name, {
    type: 'integer',
    minimum: 1,
    maximum: max,
  })

/** Delivery numbers and reminder sequences: 1, 2, 3, … */
export const ReferralSequenceNo = positiveInt('SequenceNo', 1_000_000)

/** Largest attachment the domain accepts (the HTTP layer may set a lower limit). */
export const REFERRAL_MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024

const CONTENT_TYPE = /^[a-z0-9][a-z0-9.+-]*\/[a-z0-9][a-z0-9.+-]*$/i
const ContentType = refine(t.string, (s) => s.length <= 127 && CONTENT_TYPE.test(s), 'ContentType', {
  maxLength: 127,
  pattern: CONTENT_TYPE.source,
})

const SHA256_HEX = /^[0-9a-f]{64}$/
const Sha256Hex = refine(t.string, (s) => SHA256_HEX.test(s), 'Sha256Hex', { pattern: SHA256_HEX.source })

const AttachmentSize = positiveInt('SizeBytes', REFERRAL_MAX_ATTACHMENT_BYTES)

const strict = <P extends t.Props>(props: P) => t.exact(t.type(props))
const optional = <P extends t.Props>(props: P) => t.exact(t.partial(props))

// ---------------------------------------------------------------------------------------------
// PHI
// ---------------------------------------------------------------------------------------------

/** What an event's `phi` becomes once the patient's data key is destroyed (forgotten patient). */
export const ReferralRedactedPhi = t.readonly(strict({ redacted: t.literal(true) }))
export type ReferralRedactedPhi = t.TypeOf<typeof ReferralRedactedPhi>

/**
 * A PHI payload codec that refuses an object carrying `redacted`, so that in
 * `t.union([payload, redacted])` a redacted marker is never mistaken for an all-optional payload
 * (an exact codec would otherwise strip the marker and decode `{}`).
 */
const hasRedactedKey = (u: unknown): boolean => typeof u === 'object' && u !== null && 'redacted' in u
export const phiPayload = <C extends t.Mixed>(
  codec: C,
): t.RefinementType<C, t.TypeOf<C>, t.OutputOf<C>, unknown> =>
  new t.RefinementType<C, t.TypeOf<C>, t.OutputOf<C>, unknown>(
    codec.name,
    (u): u is t.TypeOf<C> => codec.is(u) && !hasRedactedKey(u),
    (u, c) => (hasRedactedKey(u) ? t.failure(u, c) : codec.validate(u, c)),
    codec.encode,
    codec,
    (a) => !hasRedactedKey(a),
  )

/** `phi` of an event: the payload, or the redaction marker. */
const phiOrRedacted = <C extends t.Mixed>(payload: C) => t.union([payload, ReferralRedactedPhi])

export const isRedactedPhi = (phi: unknown): phi is ReferralRedactedPhi =>
  typeof phi === 'object' && phi !== null && (phi as { redacted?: unknown }).redacted === true

export const ReferralCommunicationChannel = t.keyof({ email: null, sms: null, phone: null, mail: null })
export type ReferralCommunicationChannel = t.TypeOf<typeof ReferralCommunicationChannel>

/** The patient as the referrer describes them. All of it is PHI. */
export const ReferralPatient = t.readonly(
  t.intersection([
    strict({
      givenName: boundedText('GivenName', 200),
      familyName: boundedText('FamilyName', 200),
      dateOfBirth: ReferralCalendarDate,
    }),
    optional({
      healthNumber: boundedText('HealthNumber', 64),
      email: boundedText('Email', 254),
      phone: boundedText('Phone', 40),
      address: boundedText('Address', 500),
      communication: t.readonly(
        optional({ preferredChannel: ReferralCommunicationChannel, language: boundedText('Language', 35) }),
      ),
      consent: t.readonly(strict({ email: t.boolean, sms: t.boolean, phone: t.boolean })),
    }),
  ]),
)
export type ReferralPatient = t.TypeOf<typeof ReferralPatient>

export const ReferralSentPhi = phiPayload(
  t.readonly(strict({ patient: ReferralPatient, reason: boundedText('Reason', 8000) })),
)
export type ReferralSentPhi = t.TypeOf<typeof ReferralSentPhi>

const NotePhi = phiPayload(t.readonly(optional({ note: boundedText('Note', 4000) })))
const AppointmentPhi = phiPayload(t.readonly(optional({ location: boundedText('Location', 1000) })))
const OutcomePhi = phiPayload(t.readonly(optional({ outcomeNote: boundedText('OutcomeNote', 8000) })))
const UrgencyChangePhi = phiPayload(t.readonly(optional({ reason: boundedText('Reason', 2000) })))
const AttachmentPhi = phiPayload(t.readonly(strict({ fileName: boundedText('FileName', 255) })))
const MessagePhi = phiPayload(t.readonly(strict({ body: boundedText('Body', 20000) })))

// ---------------------------------------------------------------------------------------------
// Shared value codecs
// ---------------------------------------------------------------------------------------------

export const ReferralRoute = t.keyof({ direct: null, pooled: null })
export type ReferralRoute = t.TypeOf<typeof ReferralRoute>

/** "Send to this specialist" (preferred provider) or "choose for me" (pooled). */
export const ReferralTarget = t.union([
  t.readonly(strict({ kind: t.literal('direct'), practiceId: PracticeId })),
  t.readonly(strict({ kind: t.literal('pooled') })),
])
export type ReferralTarget = t.TypeOf<typeof ReferralTarget>

/** Where the referral came from, for attribution reports. Not PHI. */
export const ReferralAttribution = t.readonly(
  optional({
    channel: boundedText('Channel', 100),
    campaign: boundedText('Campaign', 100),
    location: boundedText('Location', 200),
    serviceLine: boundedText('ServiceLine', 100),
    referringPracticeId: PracticeId,
  }),
)
export type ReferralAttribution = t.TypeOf<typeof ReferralAttribution>

export const ReferralDeclineReason = t.keyof({
  capacity: null,
  out_of_scope: null,
  insufficient_information: null,
  patient_preference: null,
  other: null,
})
export type ReferralDeclineReason = t.TypeOf<typeof ReferralDeclineReason>

export const ReferralCancelReason = t.keyof({
  patient_request: null,
  no_longer_needed: null,
  sent_in_error: null,
  duplicate: null,
  other: null,
})
export type ReferralCancelReason = t.TypeOf<typeof ReferralCancelReason>

/** Why a referral went back to its sender. */
export const ReferralReturnReason = t.keyof({
  pool_exhausted: null,
  no_candidate: null,
  declined: null,
  expired: null,
})
export type ReferralReturnReason = t.TypeOf<typeof ReferralReturnReason>

const RoutingDecisionId = boundedText('RoutingDecisionId', 128)

// ---------------------------------------------------------------------------------------------
// Commands (client and system payloads: `{ type, data }`)
// ---------------------------------------------------------------------------------------------

const command = <T extends string, D extends t.Mixed>(type: T, data: D) =>
  t.readonly(strict({ type: t.literal(type), data }))

/**
 * A SNOMED CT or LOINC coding the referral arrived with (FHIR import), carried through unchanged
 * and written back on export. The category it was mapped to is the referral's `category`.
 */
export const StandardCoding = t.readonly(
  t.intersection([
    strict({ system: CodingSystem, code: boundedText('Code', 32) }),
    optional({ display: boundedText('Display', 200) }),
  ]),
)
export type StandardCoding = t.TypeOf<typeof StandardCoding>
const StandardCodings = t.refinement(
  t.readonlyArray(StandardCoding),
  (a) => a.length >= 1 && a.length <= 10,
  'StandardCodings',
)

export const SendReferralData = t.readonly(
  t.intersection([
    strict({
      referralId: ReferralId,
      senderPracticeId: PracticeId,
      patientId: PatientId,
      phi: ReferralSentPhi,
      specialtyId: SpecialtyId,
      category: CategoryRef,
      regionId: RegionId,
      urgency: Urgency,
      target: ReferralTarget,
    }),
    optional({
      insuranceNetworkId: InsuranceNetworkId,
      attribution: ReferralAttribution,
      codings: StandardCodings,
    }),
  ]),
)
export type SendReferralData = t.TypeOf<typeof SendReferralData>

const Empty = t.readonly(strict({}))

export const DeclineReferralData = t.readonly(
  t.intersection([strict({ reasonCode: ReferralDeclineReason }), optional({ phi: NotePhi })]),
)
/** Longest appointment the domain records: 24 hours, in whole minutes. */
export const REFERRAL_MAX_APPOINTMENT_MINUTES = 24 * 60
/** How long an appointment lasts, in whole minutes (1 … 1440). Optional: older events have none. */
export const AppointmentDurationMinutes = positiveInt('DurationMinutes', REFERRAL_MAX_APPOINTMENT_MINUTES)

export const ScheduleAppointmentData = t.readonly(
  t.intersection([
    strict({ at: Instant }),
    optional({ durationMinutes: AppointmentDurationMinutes, phi: AppointmentPhi }),
  ]),
)
export const CompleteReferralData = t.readonly(optional({ phi: OutcomePhi }))
export const ChangeUrgencyData = t.readonly(
  t.intersection([strict({ urgency: Urgency }), optional({ phi: UrgencyChangePhi })]),
)
export const ChangeCategoryData = t.readonly(strict({ category: CategoryRef }))
export const CancelReferralData = t.readonly(
  t.intersection([strict({ reasonCode: ReferralCancelReason }), optional({ phi: NotePhi })]),
)
export const RedirectReferralData = t.readonly(strict({ target: ReferralTarget }))
export const AddAttachmentData = t.readonly(
  strict({
    attachmentId: AttachmentId,
    contentType: ContentType,
    sizeBytes: AttachmentSize,
    sha256: Sha256Hex,
    phi: AttachmentPhi,
  }),
)
export const PostMessageData = t.readonly(strict({ messageId: MessageId, phi: MessagePhi }))

/** Commands a user issues (the HTTP request bodies). */
export const ReferralUserCommandPayload = t.union([
  command('SendReferral', SendReferralData),
  command('AcceptReferral', Empty),
  command('DeclineReferral', DeclineReferralData),
  command('ScheduleAppointment', ScheduleAppointmentData),
  command('RescheduleAppointment', ScheduleAppointmentData),
  command('RecordNoShow', Empty),
  command('CompleteReferral', CompleteReferralData),
  command('ChangeUrgency', ChangeUrgencyData),
  command('ChangeCategory', ChangeCategoryData),
  command('CancelReferral', CancelReferralData),
  command('RedirectReferral', RedirectReferralData),
  command('AddAttachment', AddAttachmentData),
  command('PostMessage', PostMessageData),
])
export type ReferralUserCommandPayload = t.TypeOf<typeof ReferralUserCommandPayload>

export const DeliverReferralData = t.readonly(
  t.intersection([
    strict({ recipientPracticeId: PracticeId, route: ReferralRoute }),
    optional({ routingDecisionId: RoutingDecisionId }),
  ]),
)
export const ReferralDeliveryNoData = t.readonly(strict({ deliveryNo: ReferralSequenceNo }))

/** Commands only the engine issues (router process manager, deadline scheduler). */
export const ReferralSystemCommandPayload = t.union([
  command('DeliverReferral', DeliverReferralData),
  command('MarkReferralUnassigned', t.readonly(strict({ reason: t.literal('no_candidate') }))),
  command(
    'ReturnReferral',
    t.readonly(strict({ reason: t.keyof({ pool_exhausted: null, no_candidate: null }) })),
  ),
  command('IssueResponseReminder', ReferralDeliveryNoData),
  command('ExpireResponse', ReferralDeliveryNoData),
  command('IssuePatientReminder', t.readonly(strict({ sequence: ReferralSequenceNo }))),
])
export type ReferralSystemCommandPayload = t.TypeOf<typeof ReferralSystemCommandPayload>

export const ReferralCommandPayload = t.union([ReferralUserCommandPayload, ReferralSystemCommandPayload])
export type ReferralCommandPayload = t.TypeOf<typeof ReferralCommandPayload>
export type ReferralCommandType = ReferralCommandPayload['type']

// ---------------------------------------------------------------------------------------------
// Events (`{ type, data }`; every event names its referral)
// ---------------------------------------------------------------------------------------------

const event = <T extends string, P extends t.Props>(type: T, props: P) =>
  t.readonly(strict({ type: t.literal(type), data: t.readonly(t.exact(t.type(props))) }))

const eventWithOptional = <T extends string, P extends t.Props, O extends t.Props>(
  type: T,
  props: P,
  opt: O,
) =>
  t.readonly(
    strict({
      type: t.literal(type),
      data: t.readonly(t.intersection([t.exact(t.type(props)), t.exact(t.partial(opt))])),
    }),
  )

/** Schema version of each event type as written today (older versions are upcast on read). */
export const REFERRAL_EVENT_SCHEMA_VERSION = { ReferralSent: 2 } as const
export const referralEventSchemaVersion = (type: string): number =>
  type === 'ReferralSent' ? REFERRAL_EVENT_SCHEMA_VERSION.ReferralSent : 1

export const ReferralSent = eventWithOptional(
  'ReferralSent',
  {
    referralId: ReferralId,
    senderPracticeId: PracticeId,
    patientId: PatientId,
    phi: phiOrRedacted(ReferralSentPhi),
    specialtyId: SpecialtyId,
    category: CategoryRef,
    regionId: RegionId,
    urgency: Urgency,
    target: ReferralTarget,
    sentAt: Instant,
  },
  { insuranceNetworkId: InsuranceNetworkId, attribution: ReferralAttribution, codings: StandardCodings },
)

export const ReferralDelivered = eventWithOptional(
  'ReferralDelivered',
  {
    referralId: ReferralId,
    recipientPracticeId: PracticeId,
    route: ReferralRoute,
    deliveryNo: ReferralSequenceNo,
    deliveredAt: Instant,
    respondBy: Instant,
  },
  { routingDecisionId: RoutingDecisionId },
)

export const ReferralEvent = t.union([
  ReferralSent,
  ReferralDelivered,
  event('ReferralUnassigned', { referralId: ReferralId, reason: t.literal('no_candidate'), at: Instant }),
  event('ReferralReturned', { referralId: ReferralId, reason: ReferralReturnReason, returnedAt: Instant }),
  event('ReferralAccepted', {
    referralId: ReferralId,
    practiceId: PracticeId,
    deliveryNo: ReferralSequenceNo,
    acceptedAt: Instant,
  }),
  event('ReferralDeclined', {
    referralId: ReferralId,
    practiceId: PracticeId,
    deliveryNo: ReferralSequenceNo,
    route: ReferralRoute,
    reasonCode: ReferralDeclineReason,
    phi: phiOrRedacted(NotePhi),
    declinedAt: Instant,
  }),
  event('ReferralExpired', {
    referralId: ReferralId,
    practiceId: PracticeId,
    deliveryNo: ReferralSequenceNo,
    route: ReferralRoute,
    expiredAt: Instant,
  }),
  event('ResponseReminderIssued', {
    referralId: ReferralId,
    practiceId: PracticeId,
    deliveryNo: ReferralSequenceNo,
    respondBy: Instant,
    issuedAt: Instant,
  }),
  event('PatientReminderIssued', {
    referralId: ReferralId,
    patientId: PatientId,
    sequence: ReferralSequenceNo,
    issuedAt: Instant,
  }),
  // `durationMinutes` is optional and additive: events written before it existed decode as they
  // are (no upcaster, schema version unchanged) and mean "duration not known".
  eventWithOptional(
    'AppointmentScheduled',
    { referralId: ReferralId, practiceId: PracticeId, at: Instant, phi: phiOrRedacted(AppointmentPhi) },
    { durationMinutes: AppointmentDurationMinutes },
  ),
  eventWithOptional(
    'AppointmentRescheduled',
    {
      referralId: ReferralId,
      practiceId: PracticeId,
      at: Instant,
      previousAt: Instant,
      phi: phiOrRedacted(AppointmentPhi),
    },
    { durationMinutes: AppointmentDurationMinutes },
  ),
  event('PatientNoShowRecorded', {
    referralId: ReferralId,
    practiceId: PracticeId,
    appointmentAt: Instant,
    recordedAt: Instant,
  }),
  event('ReferralCompleted', {
    referralId: ReferralId,
    practiceId: PracticeId,
    phi: phiOrRedacted(OutcomePhi),
    completedAt: Instant,
  }),
  event('ReferralUrgencyChanged', {
    referralId: ReferralId,
    practiceId: PracticeId,
    urgency: Urgency,
    previousUrgency: Urgency,
    phi: phiOrRedacted(UrgencyChangePhi),
  }),
  event('ReferralCategoryChanged', {
    referralId: ReferralId,
    practiceId: PracticeId,
    specialtyId: SpecialtyId,
    regionId: RegionId,
    route: ReferralRoute,
    category: CategoryRef,
    previousCategory: CategoryRef,
  }),
  event('ReferralCancelled', {
    referralId: ReferralId,
    reasonCode: ReferralCancelReason,
    phi: phiOrRedacted(NotePhi),
    recipientPracticeId: t.union([PracticeId, t.null]),
    cancelledAt: Instant,
  }),
  event('ReferralRedirected', {
    referralId: ReferralId,
    target: ReferralTarget,
    previousRoute: ReferralRoute,
  }),
  event('AttachmentAdded', {
    referralId: ReferralId,
    attachmentId: AttachmentId,
    contentType: ContentType,
    sizeBytes: AttachmentSize,
    sha256: Sha256Hex,
    phi: phiOrRedacted(AttachmentPhi),
  }),
  event('MessagePosted', {
    referralId: ReferralId,
    messageId: MessageId,
    fromPracticeId: PracticeId,
    phi: phiOrRedacted(MessagePhi),
    postedAt: Instant,
  }),
])
export type ReferralEvent = t.TypeOf<typeof ReferralEvent>
export type ReferralEventType = ReferralEvent['type']
export type ReferralEventOf<T extends ReferralEventType> = Extract<ReferralEvent, { type: T }>

/** Event types whose data carries a `phi` property (payload or `{ redacted: true }`). */
export const REFERRAL_PHI_EVENTS = [
  'ReferralSent',
  'ReferralDeclined',
  'AppointmentScheduled',
  'AppointmentRescheduled',
  'ReferralCompleted',
  'ReferralUrgencyChanged',
  'ReferralCancelled',
  'AttachmentAdded',
  'MessagePosted',
] as const satisfies readonly ReferralEventType[]
export type ReferralPhiEventType = (typeof REFERRAL_PHI_EVENTS)[number]

/**
 * `[codec, JSON Schema keywords]` for this module's refined strings and numbers (length limits,
 * patterns, `integer`, `date`), e.g. for an OpenAPI schema registry keyed by codec identity.
 */
export const REFERRAL_SCHEMA_HINTS: ReadonlyArray<readonly [t.Any, Readonly<Record<string, unknown>>]> =
  schemaHints
