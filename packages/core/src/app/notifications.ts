import {
  evolveReferral,
  initialReferralState,
  isRedactedPhi,
  type ReferralCommunicationChannel,
  type ReferralEvent,
  type ReferralEventOf,
  type ReferralPatient,
  type ReferralState,
} from '../referral/index.js'
import type { Urgency } from '../shared/domain-types.js'
import { absurd } from '../shared/errors.js'
import type { EventId, PatientId, PracticeId, ReferralId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'

export type NotificationAudience = 'sender' | 'recipient' | 'patient'

/** Who gets what (SPEC "Notifications and time"); the names match `@referrals/notify` templates. */
export type NotificationKind =
  | 'sender.receipt'
  | 'sender.accepted'
  | 'sender.declined'
  | 'sender.rerouted'
  | 'sender.scheduled'
  | 'sender.completed'
  | 'recipient.new_referral'
  | 'recipient.reminder'
  | 'recipient.expired'
  | 'patient.confirmation'
  | 'patient.pending_reminder'
  | 'patient.unavailable'

export type NotificationPayload = Readonly<Record<string, string | number | boolean | null>>

/**
 * Something that should be told to someone because of one committed event. It carries no PHI:
 * ids, codes and times only. `id` is `<eventId>:<audience>:<kind>`, so deriving again from the
 * same event (a redelivered subscription event) yields the same ids and the outbox drops the copy.
 */
export interface NotificationIntent {
  readonly id: string
  readonly eventId: EventId
  readonly referralId: ReferralId
  readonly kind: NotificationKind
  readonly audience: NotificationAudience
  /** The practice told (sender and recipient audiences). */
  readonly practiceId?: PracticeId
  /** The patient told (patient audience). */
  readonly patientId?: PatientId
  /** For scheduling only (urgent and emergent reminders ignore quiet hours); not for display to patients. */
  readonly urgency: Urgency
  /** Patient audience: the channels the patient consented to, the preferred one first. */
  readonly patientChannels?: readonly ReferralCommunicationChannel[]
  /** Non-PHI facts for templates and machine receivers. Patient intents carry no clinical codes. */
  readonly payload: NotificationPayload
}

/** The stored envelope fields the derivation needs. */
export interface NotificationEnvelope {
  readonly id: EventId
  readonly recordedAt: Instant
}

export interface NotificationContext {
  /**
   * The referral's events before this one, in stream order, decoded with PHI opened (a forgotten
   * patient's PHI reads as redacted). Consent is read from the `ReferralSent` among them.
   */
  readonly history: readonly ReferralEvent[]
  /** Directory lookup for display names (practice names are not PHI). */
  readonly practiceName?: (practiceId: PracticeId) => string | null
}

/** What the patient agreed to be contacted by, preferred channel first; empty when forgotten or no consent. */
export const patientConsentedChannels = (
  sent: ReferralEventOf<'ReferralSent'> | undefined,
): readonly ReferralCommunicationChannel[] => {
  if (sent === undefined || isRedactedPhi(sent.data.phi)) return []
  const patient: ReferralPatient = sent.data.phi.patient
  const consent = patient.consent
  if (consent === undefined) return []
  const consented = (['email', 'sms', 'phone'] as const).filter((c) => consent[c])
  const preferred = patient.communication?.preferredChannel
  return preferred !== undefined && (consented as readonly string[]).includes(preferred)
    ? [preferred, ...consented.filter((c) => c !== preferred)]
    : consented
}

const findSent = (
  events: readonly ReferralEvent[],
  event: ReferralEvent,
): ReferralEventOf<'ReferralSent'> | undefined =>
  event.type === 'ReferralSent'
    ? event
    : events.find((e): e is ReferralEventOf<'ReferralSent'> => e.type === 'ReferralSent')

/**
 * Was this delivery a re-route after a decline or an expiry (rather than the first delivery, or
 * one the sender asked for by redirecting)? The last "why is it unassigned" event decides.
 */
const isReroute = (history: readonly ReferralEvent[]): boolean => {
  for (let i = history.length - 1; i >= 0; i--) {
    const type = history[i]?.type
    if (type === 'ReferralDeclined' || type === 'ReferralExpired') return true
    if (type === 'ReferralRedirected' || type === 'ReferralSent') return false
  }
  return false
}

/**
 * Derives the notification intents of one committed referral event (pure). Sender: receipt
 * (delivered), accepted, returned (declined/expired/pool exhausted), re-routed, scheduled,
 * completed. Recipient: new referral (preferred provider when direct), reminder, expiry notice.
 * Patient: confirmation, pending reminder, unavailable notice — only with consent to at least one
 * channel, never for a forgotten patient, and without clinical detail.
 */
export const deriveNotifications = (
  event: ReferralEvent,
  envelope: NotificationEnvelope,
  context: NotificationContext,
): readonly NotificationIntent[] => {
  const before = context.history.reduce(evolveReferral, initialReferralState)
  const after: ReferralState = evolveReferral(before, event)
  if (!after.exists) return []
  const name = (id: PracticeId | null): string | null =>
    id === null ? null : (context.practiceName?.(id) ?? null)
  const common = {
    referralId: after.referralId,
    occurredAt: envelope.recordedAt,
  }
  const practiceFacts = {
    ...common,
    senderPracticeId: after.senderPracticeId,
    senderPracticeName: name(after.senderPracticeId),
    specialtyId: after.specialtyId,
    urgency: after.urgency,
  }
  const intent = (
    audience: 'sender' | 'recipient',
    kind: NotificationKind,
    practiceId: PracticeId,
    payload: NotificationPayload = {},
  ): NotificationIntent => ({
    id: `${envelope.id}:${audience}:${kind}`,
    eventId: envelope.id,
    referralId: after.referralId,
    kind,
    audience,
    practiceId,
    urgency: after.urgency,
    payload: { ...practiceFacts, ...payload },
  })
  const toSender = (kind: NotificationKind, payload?: NotificationPayload) => [
    intent('sender', kind, after.senderPracticeId, payload),
  ]
  const toPatient = (kind: NotificationKind, payload: NotificationPayload = {}): NotificationIntent[] => {
    const channels = patientConsentedChannels(findSent(context.history, event))
    if (channels.length === 0) return []
    return [
      {
        id: `${envelope.id}:patient:${kind}`,
        eventId: envelope.id,
        referralId: after.referralId,
        kind,
        audience: 'patient',
        patientId: after.patientId,
        urgency: after.urgency,
        patientChannels: channels,
        payload: {
          ...common,
          senderPracticeId: after.senderPracticeId,
          senderPracticeName: name(after.senderPracticeId),
          ...payload,
        },
      },
    ]
  }

  switch (event.type) {
    case 'ReferralSent':
      return toPatient('patient.confirmation')
    case 'ReferralDelivered': {
      const d = event.data
      const facts = {
        recipientPracticeId: d.recipientPracticeId,
        recipientPracticeName: name(d.recipientPracticeId),
        deliveryNo: d.deliveryNo,
        respondBy: d.respondBy,
        route: d.route,
      }
      return [
        ...toSender(isReroute(context.history) ? 'sender.rerouted' : 'sender.receipt', facts),
        intent('recipient', 'recipient.new_referral', d.recipientPracticeId, {
          ...facts,
          preferredProvider: d.route === 'direct',
        }),
      ]
    }
    case 'ReferralAccepted':
      return toSender('sender.accepted', {
        recipientPracticeId: event.data.practiceId,
        recipientPracticeName: name(event.data.practiceId),
        deliveryNo: event.data.deliveryNo,
      })
    case 'ReferralReturned':
      return [
        ...toSender('sender.declined', { returnReason: event.data.reason }),
        ...toPatient('patient.unavailable'),
      ]
    case 'ResponseReminderIssued':
      return [
        intent('recipient', 'recipient.reminder', event.data.practiceId, {
          recipientPracticeId: event.data.practiceId,
          recipientPracticeName: name(event.data.practiceId),
          deliveryNo: event.data.deliveryNo,
          respondBy: event.data.respondBy,
        }),
      ]
    case 'ReferralExpired':
      return [
        intent('recipient', 'recipient.expired', event.data.practiceId, {
          recipientPracticeId: event.data.practiceId,
          recipientPracticeName: name(event.data.practiceId),
          deliveryNo: event.data.deliveryNo,
        }),
      ]
    case 'PatientReminderIssued':
      return toPatient('patient.pending_reminder', { sequence: event.data.sequence })
    case 'AppointmentScheduled':
    case 'AppointmentRescheduled':
      // The appointment place is PHI (free text); only the time goes out, to the sender.
      return toSender('sender.scheduled', {
        recipientPracticeId: event.data.practiceId,
        recipientPracticeName: name(event.data.practiceId),
        appointmentAt: event.data.at,
      })
    case 'ReferralCompleted':
      return toSender('sender.completed', {
        recipientPracticeId: event.data.practiceId,
        recipientPracticeName: name(event.data.practiceId),
      })
    case 'ReferralUnassigned':
    case 'ReferralDeclined':
    case 'PatientNoShowRecorded':
    case 'ReferralUrgencyChanged':
    case 'ReferralCategoryChanged':
    case 'ReferralCancelled':
    case 'ReferralRedirected':
    case 'AttachmentAdded':
    case 'MessagePosted':
      return []
    default:
      return absurd(event)
  }
}
