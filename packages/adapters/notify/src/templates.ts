/**
 * Plain-text templates, one per notification kind. Inputs are deliberately narrow: practice names,
 * a short referral reference, times and links — never patient identity or clinical content.
 * Patient-facing templates take an even narrower input type, so clinical detail (specialty,
 * category, urgency, reason) cannot reach them by mistake.
 */
export interface PracticeMessageInput {
  readonly referralRef: string
  readonly senderPractice: string
  readonly recipientPractice: string | null
  readonly specialty: string
  readonly urgency: string
  readonly preferredProvider: boolean
  readonly appointmentAt?: string
  readonly appointmentPlace?: string
  readonly link?: string
  readonly respondBy?: string
  /** `sender.declined`: why it came back (`declined`, `expired`, `pool_exhausted`, `no_candidate`). */
  readonly returnReason?: string
}

const RETURNED_BECAUSE: Readonly<Record<string, string>> = {
  declined: 'was declined and returned to you',
  expired: 'was not answered in time and returned to you',
  pool_exhausted: 'was declined by every eligible specialist and returned to you',
  no_candidate: 'could not be placed with a specialist and was returned to you',
}

export interface PatientMessageInput {
  readonly senderPractice: string
  readonly recipientPractice: string | null
  readonly appointmentAt?: string
  readonly contactPhone?: string
}

export type PracticeNotificationKind =
  | 'sender.receipt'
  | 'sender.accepted'
  | 'sender.declined'
  | 'sender.rerouted'
  | 'sender.scheduled'
  | 'sender.completed'
  | 'recipient.new_referral'
  | 'recipient.reminder'
  | 'recipient.expired'

export type PatientNotificationKind =
  | 'patient.confirmation'
  | 'patient.pending_reminder'
  | 'patient.unavailable'

export interface RenderedMessage {
  readonly subject: string
  readonly text: string
}

const lines = (...parts: readonly (string | false | undefined)[]): string =>
  parts.filter((p): p is string => typeof p === 'string').join('\n')

export const renderPracticeMessage = (
  kind: PracticeNotificationKind,
  m: PracticeMessageInput,
): RenderedMessage => {
  const to = m.recipientPractice ?? 'the specialist pool'
  switch (kind) {
    case 'sender.receipt':
      return {
        subject: `Referral ${m.referralRef} delivered`,
        text: lines(
          `Referral ${m.referralRef} (${m.specialty}, ${m.urgency}) was delivered to ${to}.`,
          m.link,
        ),
      }
    case 'sender.accepted':
      return {
        subject: `Referral ${m.referralRef} accepted`,
        text: lines(
          `${to} accepted referral ${m.referralRef}. Their office will contact the patient.`,
          m.link,
        ),
      }
    case 'sender.declined':
      return {
        subject: `Referral ${m.referralRef} returned`,
        text: lines(
          `Referral ${m.referralRef} ${RETURNED_BECAUSE[m.returnReason ?? 'declined'] ?? RETURNED_BECAUSE.declined}. You can redirect it.`,
          m.link,
        ),
      }
    case 'sender.rerouted':
      return {
        subject: `Referral ${m.referralRef} re-routed`,
        text: lines(
          `Referral ${m.referralRef} was declined by one specialist and re-routed to ${to}.`,
          m.link,
        ),
      }
    case 'sender.scheduled':
      return {
        subject: `Referral ${m.referralRef} scheduled`,
        text: lines(
          `${to} booked an appointment for referral ${m.referralRef}${m.appointmentAt ? ` on ${m.appointmentAt}` : ''}${m.appointmentPlace ? ` at ${m.appointmentPlace}` : ''}.`,
          m.link,
        ),
      }
    case 'sender.completed':
      return {
        subject: `Referral ${m.referralRef} completed`,
        text: lines(`${to} completed referral ${m.referralRef}. An outcome note may be available.`, m.link),
      }
    case 'recipient.new_referral':
      return {
        subject: `${m.preferredProvider ? 'New referral for you (preferred provider)' : 'New referral'} ${m.referralRef}`,
        text: lines(
          `${m.senderPractice} sent referral ${m.referralRef} (${m.specialty}, ${m.urgency})${m.preferredProvider ? ', naming you as the preferred provider' : ''}.`,
          m.respondBy && `Please accept or decline by ${m.respondBy}.`,
          m.link,
        ),
      }
    case 'recipient.reminder':
      return {
        subject: `Reminder: referral ${m.referralRef} awaits your answer`,
        text: lines(
          `Referral ${m.referralRef} from ${m.senderPractice} is still waiting for accept or decline.`,
          m.respondBy && `It expires at ${m.respondBy}.`,
          m.link,
        ),
      }
    case 'recipient.expired':
      return {
        subject: `Referral ${m.referralRef} expired`,
        text: `Referral ${m.referralRef} was not answered in time and was withdrawn from your queue.`,
      }
  }
}

export const renderPatientMessage = (
  kind: PatientNotificationKind,
  m: PatientMessageInput,
): RenderedMessage => {
  const contact = m.contactPhone ? ` You can reach ${m.senderPractice} at ${m.contactPhone}.` : ''
  switch (kind) {
    case 'patient.confirmation':
      return {
        subject: 'Your referral was sent',
        text: `${m.senderPractice} sent your referral. The specialist's office will contact you.${contact}`,
      }
    case 'patient.pending_reminder':
      return {
        subject: 'Your referral is in progress',
        text: `Your referral from ${m.senderPractice} is still being arranged. No action is needed from you.${contact}`,
      }
    case 'patient.unavailable':
      return {
        subject: 'Update on your referral',
        text: `The specialist could not take your referral. ${m.senderPractice} will follow up with you about next steps.${contact}`,
      }
  }
}
