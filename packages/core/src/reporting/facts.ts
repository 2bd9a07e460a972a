import type { ReferralReturnReason, ReferralRoute } from '../referral/codecs.js'
import type { ReferralStatus } from '../referral/state.js'
import type { Urgency } from '../shared/domain-types.js'
import type { CategoryId, PracticeId, ReferralId, RegionId, SpecialtyId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import type { ReferralFactsEvent } from './facts-events.js'

/**
 * One row per referral for the reports (SPEC §3 "Reporting"): its milestones, counts and
 * dimensions. It holds no patient field and nothing from an event's `phi` (the patient id, name,
 * reason, notes, appointment place and messages never reach it), so a report can be computed,
 * stored and exported without PHI. Source attribution is copied from `ReferralSent` (null when the
 * referral was sent without it).
 */
export interface ReferralFacts {
  readonly referralId: ReferralId
  readonly senderPracticeId: PracticeId
  /**
   * The practice that holds the referral now — while pending, after it accepted, or when it was
   * cancelled while holding it — and null while unassigned or after it was returned.
   */
  readonly receivingPracticeId: PracticeId | null
  readonly regionId: RegionId
  readonly specialtyId: SpecialtyId
  readonly categoryId: CategoryId
  readonly subcategoryId: CategoryId | null
  readonly urgency: Urgency
  /** `direct` (to a named specialist) or `pooled` ("choose for me"), as the referral is targeted now. */
  readonly route: ReferralRoute
  readonly status: ReferralStatus
  readonly sentAt: Instant
  readonly firstDeliveredAt: Instant | null
  /** The latest delivery. */
  readonly deliveredAt: Instant | null
  readonly acceptedAt: Instant | null
  /** When the first appointment was booked (the event's occurred-at: the booking, not the visit). */
  readonly scheduledAt: Instant | null
  /** The appointment's time as last booked or rescheduled. */
  readonly appointmentAt: Instant | null
  readonly completedAt: Instant | null
  readonly cancelledAt: Instant | null
  /** The last time it went back to its sender (kept after a redirect). */
  readonly returnedAt: Instant | null
  readonly returnReason: ReferralReturnReason | null
  /** Since when the referral waits in the intake queue (null when it does not). */
  readonly unassignedSince: Instant | null
  readonly deliveryCount: number
  readonly declineCount: number
  readonly expiryCount: number
  readonly noShowCount: number
  readonly channel: string | null
  readonly campaign: string | null
  readonly location: string | null
  readonly serviceLine: string | null
  readonly referringPracticeId: PracticeId | null
  readonly updatedAt: Instant
}

/** The column names of a facts row, in a stable order (CSV exports, SQL, the no-PHI test). */
export const REFERRAL_FACT_FIELDS = [
  'referralId',
  'senderPracticeId',
  'receivingPracticeId',
  'regionId',
  'specialtyId',
  'categoryId',
  'subcategoryId',
  'urgency',
  'route',
  'status',
  'sentAt',
  'firstDeliveredAt',
  'deliveredAt',
  'acceptedAt',
  'scheduledAt',
  'appointmentAt',
  'completedAt',
  'cancelledAt',
  'returnedAt',
  'returnReason',
  'unassignedSince',
  'deliveryCount',
  'declineCount',
  'expiryCount',
  'noShowCount',
  'channel',
  'campaign',
  'location',
  'serviceLine',
  'referringPracticeId',
  'updatedAt',
] as const satisfies readonly (keyof ReferralFacts)[]

const unhandled = (_event: never, facts: ReferralFacts): ReferralFacts => facts

/**
 * Folds one referral event into the referral's facts row. `occurredAt` is the event's envelope time,
 * used for the milestones whose event carries no time of its own (an appointment booking, a
 * redirect). Total: events before `ReferralSent` leave `null`. Takes any `ReferralEvent`, or the
 * narrower `ReferralFactsEvent` (only the fields read here) that `decodeFactsEvent` makes.
 */
export const evolveReferralFacts = (
  facts: ReferralFacts | null,
  event: ReferralFactsEvent,
  occurredAt: Instant,
): ReferralFacts | null => {
  if (event.type === 'ReferralSent') {
    if (facts !== null) return facts
    const d = event.data
    const a = d.attribution ?? {}
    return {
      referralId: d.referralId,
      senderPracticeId: d.senderPracticeId,
      receivingPracticeId: null,
      regionId: d.regionId,
      specialtyId: d.specialtyId,
      categoryId: d.category.categoryId,
      subcategoryId: d.category.subcategoryId ?? null,
      urgency: d.urgency,
      route: d.target.kind,
      status: 'unassigned',
      sentAt: d.sentAt,
      firstDeliveredAt: null,
      deliveredAt: null,
      acceptedAt: null,
      scheduledAt: null,
      appointmentAt: null,
      completedAt: null,
      cancelledAt: null,
      returnedAt: null,
      returnReason: null,
      unassignedSince: d.sentAt,
      deliveryCount: 0,
      declineCount: 0,
      expiryCount: 0,
      noShowCount: 0,
      channel: a.channel ?? null,
      campaign: a.campaign ?? null,
      location: a.location ?? null,
      serviceLine: a.serviceLine ?? null,
      referringPracticeId: a.referringPracticeId ?? null,
      updatedAt: occurredAt,
    }
  }
  if (facts === null) return null
  const f = { ...facts, updatedAt: occurredAt }
  switch (event.type) {
    case 'ReferralDelivered':
      return {
        ...f,
        status: 'pending',
        route: event.data.route,
        receivingPracticeId: event.data.recipientPracticeId,
        firstDeliveredAt: f.firstDeliveredAt ?? event.data.deliveredAt,
        deliveredAt: event.data.deliveredAt,
        unassignedSince: null,
        deliveryCount: f.deliveryCount + 1,
      }
    case 'ReferralUnassigned':
      return f
    case 'ReferralReturned':
      return {
        ...f,
        status: 'returned',
        receivingPracticeId: null,
        returnedAt: event.data.returnedAt,
        returnReason: event.data.reason,
        unassignedSince: null,
      }
    case 'ReferralAccepted':
      return { ...f, status: 'accepted', acceptedAt: event.data.acceptedAt }
    case 'ReferralDeclined':
      return {
        ...f,
        status: 'unassigned',
        receivingPracticeId: null,
        unassignedSince: event.data.declinedAt,
        declineCount: f.declineCount + 1,
      }
    case 'ReferralExpired':
      return {
        ...f,
        status: 'unassigned',
        receivingPracticeId: null,
        unassignedSince: event.data.expiredAt,
        expiryCount: f.expiryCount + 1,
      }
    case 'AppointmentScheduled':
      return {
        ...f,
        status: 'scheduled',
        scheduledAt: f.scheduledAt ?? occurredAt,
        appointmentAt: event.data.at,
      }
    case 'AppointmentRescheduled':
      return {
        ...f,
        status: 'scheduled',
        scheduledAt: f.scheduledAt ?? occurredAt,
        appointmentAt: event.data.at,
      }
    case 'PatientNoShowRecorded':
      return { ...f, noShowCount: f.noShowCount + 1 }
    case 'ReferralCompleted':
      return { ...f, status: 'completed', completedAt: event.data.completedAt }
    case 'ReferralUrgencyChanged':
      return { ...f, urgency: event.data.urgency }
    case 'ReferralCategoryChanged':
      return {
        ...f,
        specialtyId: event.data.specialtyId,
        regionId: event.data.regionId,
        categoryId: event.data.category.categoryId,
        subcategoryId: event.data.category.subcategoryId ?? null,
      }
    case 'ReferralCancelled':
      return {
        ...f,
        status: 'cancelled',
        receivingPracticeId: event.data.recipientPracticeId,
        cancelledAt: event.data.cancelledAt,
        unassignedSince: null,
      }
    case 'ReferralRedirected':
      return {
        ...f,
        status: 'unassigned',
        route: event.data.target.kind,
        receivingPracticeId: null,
        unassignedSince: occurredAt,
      }
    case 'ResponseReminderIssued':
    case 'PatientReminderIssued':
    case 'AttachmentAdded':
    case 'MessagePosted':
      return facts
    default:
      return unhandled(event, facts)
  }
}
