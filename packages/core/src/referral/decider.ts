import { type Either, left, right } from 'fp-ts/lib/Either.js'
import { isMemberOf, maySendFor } from '../shared/actor.js'
import type { CommandMeta, Decider } from '../shared/decider.js'
import {
  type CategoryRef,
  type CategoryStatus,
  type RecipientProfile,
  receivesCategory,
} from '../shared/domain-types.js'
import { type DomainError, domainError } from '../shared/errors.js'
import type { PracticeId, SpecialtyId } from '../shared/ids.js'
import { addMillis, millisOf } from '../shared/time.js'
import type {
  ReferralCommandPayload,
  ReferralCommandType,
  ReferralEvent,
  ReferralEventOf,
  ReferralTarget,
} from './codecs.js'
import {
  defaultResponsePolicy,
  patientReminderDueAt,
  type ReferralResponsePolicy,
  responseWindowOf,
} from './response-window.js'
import {
  evolveReferral,
  initialReferralState,
  type ReferralAggregate,
  type ReferralState,
  type ReferralStatus,
} from './state.js'

/**
 * Facts the application layer resolves before deciding (never taken from the client):
 * the catalog entry of the chosen category and, for a direct target, the recipient's profile.
 * `null` means "looked up, does not exist".
 */
export interface ReferralCommandContexts {
  readonly SendReferral: {
    readonly category: CategoryStatus | null
    /** Required when the target is direct. */
    readonly recipient?: RecipientProfile | null
  }
  readonly ChangeCategory: { readonly category: CategoryStatus | null }
  readonly RedirectReferral: { readonly recipient?: RecipientProfile | null }
}

type ContextFor<K extends ReferralCommandType> = K extends keyof ReferralCommandContexts
  ? { readonly context: ReferralCommandContexts[K] }
  : { readonly context?: undefined }

export type ReferralCommand = {
  [K in ReferralCommandType]: Extract<ReferralCommandPayload, { type: K }> & {
    readonly meta: CommandMeta
  } & ContextFor<K>
}[ReferralCommandType]

export type ReferralCommandOf<K extends ReferralCommandType> = Extract<ReferralCommand, { type: K }>

type Result = Either<DomainError, readonly ReferralEvent[]>

const ok = (...events: ReferralEvent[]): Result => right(events)
const none: Result = right([])

const forbidden = (): Result =>
  left(domainError('referral.forbidden', 'The actor may not do this on this referral'))
const invalidTransition = (command: ReferralCommandType, status: ReferralStatus): Result =>
  left(
    domainError('referral.invalid_transition', `${command} is not allowed while the referral is ${status}`, {
      command,
      status,
    }),
  )

/** The command's duration, copied onto the event only when given (absent means not known). */
const durationOf = (data: { readonly durationMinutes?: number }) =>
  data.durationMinutes === undefined ? {} : { durationMinutes: data.durationMinutes }

const isSystem = (meta: CommandMeta): boolean => meta.actor.kind === 'system'

const actsForRecipient = (state: ReferralAggregate, meta: CommandMeta): boolean =>
  state.recipientPracticeId !== null && isMemberOf(meta.actor, state.recipientPracticeId)

const actsForSender = (state: ReferralAggregate, meta: CommandMeta): boolean =>
  isMemberOf(meta.actor, state.senderPracticeId)

/**
 * The chosen category must be an approved catalog entry of the referral's specialty. The context
 * describes the most specific entry: the subcategory when one is given (whose parent must be the
 * category), else the category.
 */
const checkCategory = (
  ref: CategoryRef,
  specialtyId: SpecialtyId,
  status: CategoryStatus | null,
): DomainError | null => {
  const expectedId = ref.subcategoryId ?? ref.categoryId
  if (status === null || status.categoryId !== expectedId)
    return domainError('referral.category_not_found', 'The chosen category is not in the catalog')
  if (ref.subcategoryId !== undefined && status.parentId !== ref.categoryId)
    return domainError('referral.category_not_found', 'The subcategory does not belong to the category')
  if (status.specialtyId !== specialtyId)
    return domainError(
      'referral.category_specialty_mismatch',
      "The category is not of the referral's specialty",
    )
  if (status.status !== 'approved')
    return domainError('referral.category_not_approved', 'The category is not approved', {
      categoryStatus: status.status,
    })
  return null
}

/** A direct target must be a verified, active practice of the specialty receiving the category. */
const checkDirectRecipient = (
  state: Pick<ReferralAggregate, 'specialtyId' | 'category' | 'insuranceNetworkId' | 'declinedBy'>,
  practiceId: PracticeId,
  profile: RecipientProfile | null | undefined,
): DomainError | null => {
  const notEligible = (reason: string) =>
    domainError('referral.recipient_not_eligible', 'The chosen practice cannot receive this referral', {
      reason,
    })
  if (profile === undefined)
    return domainError('referral.context_missing', 'The recipient profile was not resolved', {
      field: 'recipient',
    })
  if (profile === null || profile.practiceId !== practiceId) return notEligible('not_found')
  if (state.declinedBy.includes(practiceId))
    return domainError('referral.recipient_declined', 'This practice already declined this referral')
  if (!profile.verified) return notEligible('not_verified')
  if (profile.status !== 'active') return notEligible('paused')
  if (profile.specialtyId !== state.specialtyId) return notEligible('specialty')
  if (!receivesCategory(profile, state.category)) return notEligible('category')
  if (state.insuranceNetworkId !== null && !profile.insuranceNetworks.includes(state.insuranceNetworkId))
    return notEligible('insurance_network')
  return null
}

const delivered = (
  state: Pick<ReferralAggregate, 'referralId' | 'deliveryNo' | 'urgency'>,
  policy: ReferralResponsePolicy,
  meta: CommandMeta,
  recipientPracticeId: PracticeId,
  route: ReferralTarget['kind'],
  routingDecisionId: string | undefined,
): ReferralEventOf<'ReferralDelivered'> => {
  const base = {
    referralId: state.referralId,
    recipientPracticeId,
    route,
    deliveryNo: state.deliveryNo + 1,
    deliveredAt: meta.now,
    respondBy: addMillis(meta.now, policy.byUrgency[state.urgency].expireAfterMs),
  }
  return {
    type: 'ReferralDelivered',
    data: routingDecisionId === undefined ? base : { ...base, routingDecisionId },
  }
}

const ACTIVE: readonly ReferralStatus[] = ['pending', 'accepted', 'scheduled']
const OPEN: readonly ReferralStatus[] = ['unassigned', 'pending', 'accepted', 'scheduled', 'returned']

const send = (
  command: ReferralCommandOf<'SendReferral'>,
  state: ReferralState,
  policy: ReferralResponsePolicy,
): Result => {
  const { data, meta, context } = command
  if (!maySendFor(meta.actor, data.senderPracticeId)) return forbidden()
  if (state.exists)
    return left(domainError('referral.already_exists', 'A referral with this id already exists'))
  const categoryError = checkCategory(data.category, data.specialtyId, context.category)
  if (categoryError !== null) return left(categoryError)
  const insuranceNetworkId = data.insuranceNetworkId ?? null
  if (data.target.kind === 'direct') {
    const recipientError = checkDirectRecipient(
      { specialtyId: data.specialtyId, category: data.category, insuranceNetworkId, declinedBy: [] },
      data.target.practiceId,
      context.recipient,
    )
    if (recipientError !== null) return left(recipientError)
  }
  const sent: ReferralEvent = { type: 'ReferralSent', data: { ...data, sentAt: meta.now } }
  if (data.target.kind === 'pooled') return ok(sent)
  return ok(
    sent,
    delivered(
      { referralId: data.referralId, deliveryNo: 0, urgency: data.urgency },
      policy,
      meta,
      data.target.practiceId,
      'direct',
      undefined,
    ),
  )
}

/** The recipient lost the referral (decline or expiry): pooled waits for re-routing, direct returns. */
const returnedIfDirect = (state: ReferralAggregate, meta: CommandMeta, reason: 'declined' | 'expired') =>
  state.route === 'direct'
    ? [
        {
          type: 'ReferralReturned',
          data: { referralId: state.referralId, reason, returnedAt: meta.now },
        } as const,
      ]
    : []

const decideExisting = (
  command: ReferralCommand,
  state: ReferralAggregate,
  policy: ReferralResponsePolicy,
): Result => {
  const { meta } = command
  const referralId = state.referralId
  const recipient = state.recipientPracticeId
  switch (command.type) {
    case 'SendReferral':
      return send(command, state, policy)

    // ---- system: router process manager ------------------------------------------------------
    case 'DeliverReferral': {
      if (!isSystem(meta)) return forbidden()
      const { recipientPracticeId, route, routingDecisionId } = command.data
      if (state.status !== 'unassigned' || route !== state.route)
        return invalidTransition(command.type, state.status)
      if (state.declinedBy.includes(recipientPracticeId))
        return left(
          domainError('referral.recipient_declined', 'This practice already declined this referral'),
        )
      return ok(delivered(state, policy, meta, recipientPracticeId, route, routingDecisionId))
    }
    case 'MarkReferralUnassigned':
      if (!isSystem(meta)) return forbidden()
      if (state.status !== 'unassigned' || state.route !== 'pooled')
        return invalidTransition(command.type, state.status)
      if (state.intake === 'no_candidate') return none
      return ok({ type: 'ReferralUnassigned', data: { referralId, reason: 'no_candidate', at: meta.now } })
    case 'ReturnReferral':
      if (!isSystem(meta)) return forbidden()
      if (state.status !== 'unassigned') return invalidTransition(command.type, state.status)
      return ok({
        type: 'ReferralReturned',
        data: { referralId, reason: command.data.reason, returnedAt: meta.now },
      })

    // ---- system: deadline scheduler (stale or early → no events) ------------------------------
    case 'IssueResponseReminder': {
      if (!isSystem(meta)) return forbidden()
      const window = responseWindowOf(state, policy)
      if (
        window === null ||
        recipient === null ||
        command.data.deliveryNo !== state.deliveryNo ||
        state.reminderIssuedFor === state.deliveryNo ||
        millisOf(meta.now) < millisOf(window.remindAt) ||
        millisOf(meta.now) >= millisOf(window.expireAt)
      )
        return none
      return ok({
        type: 'ResponseReminderIssued',
        data: {
          referralId,
          practiceId: recipient,
          deliveryNo: state.deliveryNo,
          respondBy: window.expireAt,
          issuedAt: meta.now,
        },
      })
    }
    case 'ExpireResponse': {
      if (!isSystem(meta)) return forbidden()
      const window = responseWindowOf(state, policy)
      if (
        window === null ||
        recipient === null ||
        command.data.deliveryNo !== state.deliveryNo ||
        millisOf(meta.now) < millisOf(window.expireAt)
      )
        return none
      return ok(
        {
          type: 'ReferralExpired',
          data: {
            referralId,
            practiceId: recipient,
            deliveryNo: state.deliveryNo,
            route: state.route,
            expiredAt: meta.now,
          },
        },
        ...returnedIfDirect(state, meta, 'expired'),
      )
    }
    case 'IssuePatientReminder': {
      if (!isSystem(meta)) return forbidden()
      const { sequence } = command.data
      if (
        (state.status !== 'unassigned' && state.status !== 'pending') ||
        policy.patientReminderEveryMs <= 0 ||
        sequence <= state.patientReminderSequence ||
        millisOf(meta.now) < millisOf(patientReminderDueAt(state, policy, sequence))
      )
        return none
      return ok({
        type: 'PatientReminderIssued',
        data: { referralId, patientId: state.patientId, sequence, issuedAt: meta.now },
      })
    }

    // ---- recipient ---------------------------------------------------------------------------
    case 'AcceptReferral':
      if (recipient === null || !actsForRecipient(state, meta)) return forbidden()
      if (state.status !== 'pending') return invalidTransition(command.type, state.status)
      return ok({
        type: 'ReferralAccepted',
        data: { referralId, practiceId: recipient, deliveryNo: state.deliveryNo, acceptedAt: meta.now },
      })
    case 'DeclineReferral':
      if (recipient === null || !actsForRecipient(state, meta)) return forbidden()
      if (state.status !== 'pending') return invalidTransition(command.type, state.status)
      return ok(
        {
          type: 'ReferralDeclined',
          data: {
            referralId,
            practiceId: recipient,
            deliveryNo: state.deliveryNo,
            route: state.route,
            reasonCode: command.data.reasonCode,
            phi: command.data.phi ?? {},
            declinedAt: meta.now,
          },
        },
        ...returnedIfDirect(state, meta, 'declined'),
      )
    case 'ScheduleAppointment':
      if (recipient === null || !actsForRecipient(state, meta)) return forbidden()
      if (state.status !== 'accepted') return invalidTransition(command.type, state.status)
      return ok({
        type: 'AppointmentScheduled',
        data: {
          referralId,
          practiceId: recipient,
          at: command.data.at,
          ...durationOf(command.data),
          phi: command.data.phi ?? {},
        },
      })
    case 'RescheduleAppointment':
      if (recipient === null || !actsForRecipient(state, meta)) return forbidden()
      if (state.status !== 'scheduled' || state.appointment === null)
        return invalidTransition(command.type, state.status)
      if (
        command.data.at === state.appointment.at &&
        (command.data.durationMinutes ?? null) === state.appointment.durationMinutes
      )
        return left(domainError('referral.unchanged', 'The appointment is already at this time'))
      return ok({
        type: 'AppointmentRescheduled',
        data: {
          referralId,
          practiceId: recipient,
          at: command.data.at,
          previousAt: state.appointment.at,
          ...durationOf(command.data),
          phi: command.data.phi ?? {},
        },
      })
    case 'RecordNoShow':
      if (recipient === null || !actsForRecipient(state, meta)) return forbidden()
      if (state.status !== 'scheduled' || state.appointment === null)
        return invalidTransition(command.type, state.status)
      if (state.appointment.noShow)
        return left(
          domainError(
            'referral.no_show_already_recorded',
            'A no-show is already recorded for this appointment',
          ),
        )
      if (millisOf(meta.now) < millisOf(state.appointment.at))
        return left(domainError('referral.appointment_not_due', 'The appointment has not started yet'))
      return ok({
        type: 'PatientNoShowRecorded',
        data: {
          referralId,
          practiceId: recipient,
          appointmentAt: state.appointment.at,
          recordedAt: meta.now,
        },
      })
    case 'CompleteReferral':
      if (recipient === null || !actsForRecipient(state, meta)) return forbidden()
      if (state.status !== 'scheduled') return invalidTransition(command.type, state.status)
      return ok({
        type: 'ReferralCompleted',
        data: { referralId, practiceId: recipient, phi: command.data.phi ?? {}, completedAt: meta.now },
      })
    case 'ChangeUrgency':
      if (recipient === null || !actsForRecipient(state, meta)) return forbidden()
      if (!ACTIVE.includes(state.status)) return invalidTransition(command.type, state.status)
      if (command.data.urgency === state.urgency)
        return left(domainError('referral.unchanged', 'The referral already has this urgency'))
      return ok({
        type: 'ReferralUrgencyChanged',
        data: {
          referralId,
          practiceId: recipient,
          urgency: command.data.urgency,
          previousUrgency: state.urgency,
          phi: command.data.phi ?? {},
        },
      })
    case 'ChangeCategory': {
      if (recipient === null || !actsForRecipient(state, meta)) return forbidden()
      if (!ACTIVE.includes(state.status)) return invalidTransition(command.type, state.status)
      const next = command.data.category
      if (
        next.categoryId === state.category.categoryId &&
        next.subcategoryId === state.category.subcategoryId
      )
        return left(domainError('referral.unchanged', 'The referral is already filed under this category'))
      const categoryError = checkCategory(next, state.specialtyId, command.context.category)
      if (categoryError !== null) return left(categoryError)
      return ok({
        type: 'ReferralCategoryChanged',
        data: {
          referralId,
          practiceId: recipient,
          specialtyId: state.specialtyId,
          regionId: state.regionId,
          route: state.route,
          category: next,
          previousCategory: state.category,
        },
      })
    }

    // ---- sender ------------------------------------------------------------------------------
    case 'CancelReferral':
      if (!actsForSender(state, meta)) return forbidden()
      if (!OPEN.includes(state.status)) return invalidTransition(command.type, state.status)
      return ok({
        type: 'ReferralCancelled',
        data: {
          referralId,
          reasonCode: command.data.reasonCode,
          phi: command.data.phi ?? {},
          recipientPracticeId: recipient,
          cancelledAt: meta.now,
        },
      })
    case 'RedirectReferral': {
      if (!actsForSender(state, meta)) return forbidden()
      if (state.status !== 'returned' && state.status !== 'unassigned')
        return invalidTransition(command.type, state.status)
      const { target } = command.data
      if (state.status === 'unassigned' && target.kind === 'pooled' && state.route === 'pooled')
        return left(domainError('referral.unchanged', 'The referral is already waiting in the pool'))
      const redirected: ReferralEvent = {
        type: 'ReferralRedirected',
        data: { referralId, target, previousRoute: state.route },
      }
      if (target.kind === 'pooled') return ok(redirected)
      const recipientError = checkDirectRecipient(state, target.practiceId, command.context?.recipient)
      if (recipientError !== null) return left(recipientError)
      return ok(redirected, delivered(state, policy, meta, target.practiceId, 'direct', undefined))
    }
    case 'AddAttachment': {
      if (!actsForSender(state, meta)) return forbidden()
      if (!OPEN.includes(state.status)) return invalidTransition(command.type, state.status)
      if (state.attachmentIds.includes(command.data.attachmentId))
        return left(domainError('referral.duplicate_attachment', 'An attachment with this id already exists'))
      return ok({ type: 'AttachmentAdded', data: { referralId, ...command.data } })
    }

    // ---- both sides --------------------------------------------------------------------------
    case 'PostMessage': {
      const fromPracticeId = actsForSender(state, meta)
        ? state.senderPracticeId
        : recipient !== null && actsForRecipient(state, meta)
          ? recipient
          : null
      if (fromPracticeId === null) return forbidden()
      if (state.messageIds.includes(command.data.messageId))
        return left(domainError('referral.duplicate_message', 'A message with this id already exists'))
      return ok({
        type: 'MessagePosted',
        data: {
          referralId,
          messageId: command.data.messageId,
          fromPracticeId,
          phi: command.data.phi,
          postedAt: meta.now,
        },
      })
    }
    default:
      return absurdCommand(command)
  }
}

const absurdCommand = (_command: never): Result =>
  left(domainError('referral.unknown_command', 'Unknown referral command'))

/**
 * The referral decider. The response policy fixes `respondBy` on deliveries and when the
 * scheduler's reminder and expiry commands take effect.
 */
export const makeReferralDecider = (
  policy: ReferralResponsePolicy = defaultResponsePolicy,
): Decider<ReferralCommand, ReferralEvent, ReferralState> => ({
  decide: (command, state) => {
    if (command.type === 'SendReferral') return send(command, state, policy)
    if (!state.exists) return left(domainError('referral.not_found', 'No such referral'))
    return decideExisting(command, state, policy)
  },
  evolve: evolveReferral,
  initialState: initialReferralState,
})

export const referralDecider = makeReferralDecider(defaultResponsePolicy)
