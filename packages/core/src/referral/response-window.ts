import type { Urgency } from '../shared/domain-types.js'
import type { ReferralId } from '../shared/ids.js'
import { addMillis, HOUR_MS, type Instant, millisOf } from '../shared/time.js'
import type { ReferralSystemCommandPayload } from './codecs.js'
import type { ReferralAggregate, ReferralState } from './state.js'

/** How long a recipient has to answer, per urgency; and how often a waiting patient is reminded. */
export interface ReferralResponsePolicy {
  readonly byUrgency: Readonly<
    Record<Urgency, { readonly reminderAfterMs: number; readonly expireAfterMs: number }>
  >
  /** A patient reminder is due every this often after sending, while unassigned or pending. */
  readonly patientReminderEveryMs: number
}

export const defaultResponsePolicy: ReferralResponsePolicy = {
  byUrgency: {
    routine: { reminderAfterMs: 24 * HOUR_MS, expireAfterMs: 48 * HOUR_MS },
    urgent: { reminderAfterMs: 4 * HOUR_MS, expireAfterMs: 8 * HOUR_MS },
    emergent: { reminderAfterMs: 1 * HOUR_MS, expireAfterMs: 2 * HOUR_MS },
  },
  patientReminderEveryMs: 72 * HOUR_MS,
}

export type ReferralDeadlineKind = 'recipient_reminder' | 'expiry' | 'patient_reminder'

/**
 * Something the scheduler must do at `dueAt`. `id` is stable for a given delivery (or patient
 * reminder sequence), so a scheduler can use it as an idempotency key; `command` is the system
 * command to issue on the referral's stream. Issuing it twice, or too late, emits nothing.
 */
export interface ReferralDeadline {
  readonly id: string
  readonly referralId: ReferralId
  readonly kind: ReferralDeadlineKind
  readonly dueAt: Instant
  /** The delivery this deadline belongs to (for a patient reminder: the latest delivery, maybe 0). */
  readonly deliveryNo: number
  /** Patient reminders only: 1, 2, 3, … */
  readonly sequence: number | null
  readonly command: ReferralSystemCommandPayload
}

export const responseWindowOf = (
  state: ReferralAggregate,
  policy: ReferralResponsePolicy,
): { readonly remindAt: Instant; readonly expireAt: Instant } | null => {
  if (state.status !== 'pending' || state.deliveredAt === null) return null
  // The window the recipient was given at delivery: changing urgency later never shortens it.
  const window = policy.byUrgency[state.deliveredUrgency ?? state.urgency]
  return {
    remindAt: addMillis(state.deliveredAt, window.reminderAfterMs),
    expireAt: addMillis(state.deliveredAt, window.expireAfterMs),
  }
}

/** Patients are reminded only while they wait for a specialist to take the referral. */
const patientWaits = (state: ReferralAggregate): boolean =>
  state.status === 'unassigned' || state.status === 'pending'

export const patientReminderDueAt = (
  state: ReferralAggregate,
  policy: ReferralResponsePolicy,
  sequence: number,
): Instant => addMillis(state.sentAt, sequence * policy.patientReminderEveryMs)

const recipientReminder = (state: ReferralAggregate, dueAt: Instant): ReferralDeadline => ({
  id: `${state.referralId}:recipient_reminder:${state.deliveryNo}`,
  referralId: state.referralId,
  kind: 'recipient_reminder',
  dueAt,
  deliveryNo: state.deliveryNo,
  sequence: null,
  command: { type: 'IssueResponseReminder', data: { deliveryNo: state.deliveryNo } },
})

const expiry = (state: ReferralAggregate, dueAt: Instant): ReferralDeadline => ({
  id: `${state.referralId}:expiry:${state.deliveryNo}`,
  referralId: state.referralId,
  kind: 'expiry',
  dueAt,
  deliveryNo: state.deliveryNo,
  sequence: null,
  command: { type: 'ExpireResponse', data: { deliveryNo: state.deliveryNo } },
})

const patientReminder = (
  state: ReferralAggregate,
  policy: ReferralResponsePolicy,
  sequence: number,
): ReferralDeadline => ({
  id: `${state.referralId}:patient_reminder:${sequence}`,
  referralId: state.referralId,
  kind: 'patient_reminder',
  dueAt: patientReminderDueAt(state, policy, sequence),
  deliveryNo: state.deliveryNo,
  sequence,
  command: { type: 'IssuePatientReminder', data: { sequence } },
})

/**
 * Deadlines due at `now` and not yet acted on. Once the expiry is due the recipient reminder is
 * not (it would arrive with the expiry notice). Patient reminders missed while the scheduler was
 * down collapse into one: only the latest due sequence is returned.
 */
export const dueDeadlines = (
  state: ReferralState,
  policy: ReferralResponsePolicy,
  now: Instant,
): readonly ReferralDeadline[] => {
  if (!state.exists) return []
  const due: ReferralDeadline[] = []
  const nowMs = millisOf(now)
  const window = responseWindowOf(state, policy)
  if (window !== null) {
    if (nowMs >= millisOf(window.expireAt)) due.push(expiry(state, window.expireAt))
    else if (nowMs >= millisOf(window.remindAt) && state.reminderIssuedFor !== state.deliveryNo)
      due.push(recipientReminder(state, window.remindAt))
  }
  if (patientWaits(state) && policy.patientReminderEveryMs > 0) {
    const sequence = Math.floor((nowMs - millisOf(state.sentAt)) / policy.patientReminderEveryMs)
    if (sequence >= 1 && sequence > state.patientReminderSequence)
      due.push(patientReminder(state, policy, sequence))
  }
  return due
}

/** The earliest deadline not yet acted on, whether due or not; null when nothing is scheduled. */
export const nextDeadline = (
  state: ReferralState,
  policy: ReferralResponsePolicy,
): ReferralDeadline | null => {
  if (!state.exists) return null
  const candidates: ReferralDeadline[] = []
  const window = responseWindowOf(state, policy)
  if (window !== null) {
    if (state.reminderIssuedFor !== state.deliveryNo && millisOf(window.remindAt) < millisOf(window.expireAt))
      candidates.push(recipientReminder(state, window.remindAt))
    candidates.push(expiry(state, window.expireAt))
  }
  if (patientWaits(state) && policy.patientReminderEveryMs > 0)
    candidates.push(patientReminder(state, policy, state.patientReminderSequence + 1))
  return candidates.reduce<ReferralDeadline | null>(
    (best, d) => (best === null || millisOf(d.dueAt) < millisOf(best.dueAt) ? d : best),
    null,
  )
}
