import * as t from 'io-ts'
import type { CategoryRef, Urgency } from '../shared/domain-types.js'
import type {
  AttachmentId,
  InsuranceNetworkId,
  MessageId,
  PatientId,
  PracticeId,
  ReferralId,
  RegionId,
  SpecialtyId,
  StreamId,
} from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import type { ReferralEvent, ReferralReturnReason, ReferralRoute } from './codecs.js'

/** The lifecycle of SPEC §3 (FHIR `Task.status` mapping: see `REFERRAL_FHIR_TASK_STATUS`). */
export const ReferralStatus = t.keyof({
  unassigned: null,
  pending: null,
  accepted: null,
  scheduled: null,
  completed: null,
  returned: null,
  cancelled: null,
})
export type ReferralStatus = t.TypeOf<typeof ReferralStatus>

export const REFERRAL_STATUSES: readonly ReferralStatus[] = [
  'unassigned',
  'pending',
  'accepted',
  'scheduled',
  'completed',
  'returned',
  'cancelled',
]

export const REFERRAL_FHIR_TASK_STATUS: Readonly<Record<ReferralStatus, string>> = {
  unassigned: 'requested',
  pending: 'received',
  accepted: 'accepted',
  scheduled: 'in-progress',
  completed: 'completed',
  returned: 'rejected',
  cancelled: 'cancelled',
}

export const referralStreamId = (referralId: ReferralId): StreamId => `referral-${referralId}` as StreamId

/** One delivery of the referral to a practice; `deliveryNo` counts deliveries from 1. */
export interface ReferralDelivery {
  readonly deliveryNo: number
  readonly practiceId: PracticeId
  readonly route: ReferralRoute
  readonly deliveredAt: Instant
  readonly routingDecisionId: string | null
}

export interface ReferralAppointment {
  readonly at: Instant
  /** Whole minutes; null when the appointment was scheduled without a duration. */
  readonly durationMinutes: number | null
  readonly previousAt: Instant | null
  readonly noShow: boolean
}

/**
 * The referral as the decider sees it. It holds no PHI (the decider never needs it), so a
 * forgotten patient's redacted events fold to exactly the same state.
 */
export interface ReferralAggregate {
  readonly exists: true
  readonly referralId: ReferralId
  readonly senderPracticeId: PracticeId
  readonly patientId: PatientId
  readonly specialtyId: SpecialtyId
  readonly regionId: RegionId
  readonly insuranceNetworkId: InsuranceNetworkId | null
  readonly status: ReferralStatus
  /** The current target kind: `pooled` referrals are routed, `direct` ones go to one practice. */
  readonly route: ReferralRoute
  /** While `unassigned`: waiting for the router, or the router found no candidate. */
  readonly intake: 'awaiting_route' | 'no_candidate' | null
  readonly urgency: Urgency
  readonly previousUrgency: Urgency | null
  readonly category: CategoryRef
  readonly previousCategory: CategoryRef | null
  readonly sentAt: Instant
  /** The practice that holds the referral now (pending and after), or null. */
  readonly recipientPracticeId: PracticeId | null
  /** Practices that declined or let the response window expire; never delivered to again. */
  readonly declinedBy: readonly PracticeId[]
  /** Practices that held the referral and lost it; they keep non-PHI access only. */
  readonly formerRecipients: readonly PracticeId[]
  readonly deliveries: readonly ReferralDelivery[]
  /** Number of the latest delivery (0 before the first). */
  readonly deliveryNo: number
  /** When the current pending delivery was made; null when nothing is pending. */
  readonly deliveredAt: Instant | null
  /**
   * The urgency the current delivery was made at: its response window (and the `respondBy` the
   * recipient was told) follows it. A later urgency change applies from the next delivery, so it can
   * never expire the current one retroactively.
   */
  readonly deliveredUrgency: Urgency | null
  /** The delivery whose recipient reminder has been issued. */
  readonly reminderIssuedFor: number | null
  readonly patientReminderSequence: number
  readonly acceptedAt: Instant | null
  readonly appointment: ReferralAppointment | null
  readonly noShowCount: number
  readonly completedAt: Instant | null
  readonly cancelledAt: Instant | null
  readonly returnedReason: ReferralReturnReason | null
  readonly attachmentIds: readonly AttachmentId[]
  readonly messageIds: readonly MessageId[]
}

export type ReferralState = { readonly exists: false } | ReferralAggregate

export const initialReferralState: ReferralState = { exists: false }

const addOnce = <A>(list: readonly A[], item: A): readonly A[] =>
  list.includes(item) ? list : [...list, item]

/** The recipient gave the referral back (decline or expiry): it waits for re-routing. */
const loseRecipient = (state: ReferralAggregate, practiceId: PracticeId): ReferralAggregate => ({
  ...state,
  status: 'unassigned',
  intake: 'awaiting_route',
  recipientPracticeId: null,
  deliveredAt: null,
  declinedBy: addOnce(state.declinedBy, practiceId),
  formerRecipients: addOnce(state.formerRecipients, practiceId),
})

const unhandled = (_event: never, state: ReferralState): ReferralState => state

/** Total: never throws, ignores events that do not apply (e.g. before `ReferralSent`). */
export const evolveReferral = (state: ReferralState, event: ReferralEvent): ReferralState => {
  if (event.type === 'ReferralSent') {
    if (state.exists) return state
    const d = event.data
    return {
      exists: true,
      referralId: d.referralId,
      senderPracticeId: d.senderPracticeId,
      patientId: d.patientId,
      specialtyId: d.specialtyId,
      regionId: d.regionId,
      insuranceNetworkId: d.insuranceNetworkId ?? null,
      status: 'unassigned',
      route: d.target.kind,
      intake: d.target.kind === 'pooled' ? 'awaiting_route' : null,
      urgency: d.urgency,
      previousUrgency: null,
      category: d.category,
      previousCategory: null,
      sentAt: d.sentAt,
      recipientPracticeId: null,
      declinedBy: [],
      formerRecipients: [],
      deliveries: [],
      deliveryNo: 0,
      deliveredAt: null,
      deliveredUrgency: null,
      reminderIssuedFor: null,
      patientReminderSequence: 0,
      acceptedAt: null,
      appointment: null,
      noShowCount: 0,
      completedAt: null,
      cancelledAt: null,
      returnedReason: null,
      attachmentIds: [],
      messageIds: [],
    }
  }
  if (!state.exists) return state
  switch (event.type) {
    case 'ReferralDelivered': {
      const d = event.data
      return {
        ...state,
        status: 'pending',
        intake: null,
        route: d.route,
        recipientPracticeId: d.recipientPracticeId,
        deliveryNo: d.deliveryNo,
        deliveredAt: d.deliveredAt,
        deliveredUrgency: state.urgency,
        deliveries: [
          ...state.deliveries,
          {
            deliveryNo: d.deliveryNo,
            practiceId: d.recipientPracticeId,
            route: d.route,
            deliveredAt: d.deliveredAt,
            routingDecisionId: d.routingDecisionId ?? null,
          },
        ],
      }
    }
    case 'ReferralUnassigned':
      return { ...state, intake: 'no_candidate' }
    case 'ReferralReturned':
      return {
        ...state,
        status: 'returned',
        intake: null,
        recipientPracticeId: null,
        deliveredAt: null,
        returnedReason: event.data.reason,
      }
    case 'ReferralAccepted':
      return { ...state, status: 'accepted', acceptedAt: event.data.acceptedAt }
    case 'ReferralDeclined':
    case 'ReferralExpired':
      return loseRecipient(state, event.data.practiceId)
    case 'ResponseReminderIssued':
      return { ...state, reminderIssuedFor: event.data.deliveryNo }
    case 'PatientReminderIssued':
      return { ...state, patientReminderSequence: event.data.sequence }
    case 'AppointmentScheduled':
      return {
        ...state,
        status: 'scheduled',
        appointment: {
          at: event.data.at,
          durationMinutes: event.data.durationMinutes ?? null,
          previousAt: null,
          noShow: false,
        },
      }
    case 'AppointmentRescheduled':
      return {
        ...state,
        status: 'scheduled',
        appointment: {
          at: event.data.at,
          durationMinutes: event.data.durationMinutes ?? null,
          previousAt: event.data.previousAt,
          noShow: false,
        },
      }
    case 'PatientNoShowRecorded':
      return {
        ...state,
        noShowCount: state.noShowCount + 1,
        appointment: state.appointment === null ? null : { ...state.appointment, noShow: true },
      }
    case 'ReferralCompleted':
      return { ...state, status: 'completed', completedAt: event.data.completedAt }
    case 'ReferralUrgencyChanged':
      return { ...state, urgency: event.data.urgency, previousUrgency: event.data.previousUrgency }
    case 'ReferralCategoryChanged':
      return { ...state, category: event.data.category, previousCategory: event.data.previousCategory }
    case 'ReferralCancelled':
      return { ...state, status: 'cancelled', intake: null, cancelledAt: event.data.cancelledAt }
    case 'ReferralRedirected':
      return {
        ...state,
        status: 'unassigned',
        route: event.data.target.kind,
        intake: event.data.target.kind === 'pooled' ? 'awaiting_route' : null,
        recipientPracticeId: null,
        deliveredAt: null,
        returnedReason: null,
      }
    case 'AttachmentAdded':
      return { ...state, attachmentIds: addOnce(state.attachmentIds, event.data.attachmentId) }
    case 'MessagePosted':
      return { ...state, messageIds: addOnce(state.messageIds, event.data.messageId) }
    default:
      return unhandled(event, state)
  }
}

/**
 * May this practice see the referral's PHI? The sender always; the current recipient while it
 * holds the referral (and after it completed, or was cancelled while it held it). Former
 * recipients — after a decline or an expired response window — do not.
 */
export const canSeePhi = (state: ReferralState, practiceId: PracticeId): boolean =>
  state.exists && (state.senderPracticeId === practiceId || state.recipientPracticeId === practiceId)

/**
 * May this practice open the referral at all? Sender, current recipient, and former recipients
 * (who see only the non-PHI record of what they declined or let expire).
 */
export const canAccessReferral = (state: ReferralState, practiceId: PracticeId): boolean =>
  canSeePhi(state, practiceId) || (state.exists && state.formerRecipients.includes(practiceId))
