import { type Either, isLeft, left, right } from 'fp-ts/lib/Either.js'
import { isMemberOf } from '../shared/actor.js'
import type { CommandMeta, Decider } from '../shared/decider.js'
import { absurd, type DomainError, domainError } from '../shared/errors.js'
import type { IntakeId, PatientId, PracticeId, ProgramId, ReferralId, ReferralLinkId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import type { ConsentVersion, LinkAttribution } from './codecs.js'
import type { LinkStatus } from './decider.js'
import type {
  CommunicationPreferences,
  IntakeCommandPayload,
  IntakeCommandType,
  IntakeEvent,
  IntakePhi,
  IntakeSubmitter,
} from './intake-codecs.js'

/**
 * What an intake command needs to know about its link, resolved by the application layer from the
 * program stream (`intakeLinkContext`), never taken from the client. `null`: no such link.
 */
export interface IntakeLinkContext {
  readonly programId: ProgramId
  readonly practiceId: PracticeId
  readonly linkId: ReferralLinkId
  readonly status: LinkStatus
  readonly attribution: LinkAttribution
  /** The consent version a new intake must agree to; null before the program published one. */
  readonly currentConsentVersion: ConsentVersion | null
}

type NeedsLink = 'OpenReferralLink' | 'SubmitIntake'

export type IntakeCommand = {
  [K in IntakeCommandType]: Extract<IntakeCommandPayload, { type: K }> & {
    readonly meta: CommandMeta
  } & (K extends NeedsLink
      ? { readonly context: { readonly link: IntakeLinkContext | null } }
      : { readonly context?: undefined })
}[IntakeCommandType]

export type IntakeStage = 'opened' | 'submitted' | 'referred' | 'scheduled' | 'completed' | 'no_show'

export interface ExistingIntake {
  readonly exists: true
  readonly intakeId: IntakeId
  readonly programId: ProgramId
  readonly practiceId: PracticeId
  readonly linkId: ReferralLinkId
  readonly attribution: LinkAttribution
  readonly stage: IntakeStage
  readonly openedAt: Instant
  /** Set by `IntakeSubmitted`; the patient whose key seals this intake's PHI. */
  readonly patientId: PatientId | null
  readonly submittedBy: IntakeSubmitter | null
  readonly consent: { readonly version: ConsentVersion; readonly agreedAt: Instant } | null
  readonly communication: CommunicationPreferences | null
  readonly referralId: ReferralId | null
  readonly appointmentAt: Instant | null
}

export type IntakeState = { readonly exists: false } | ExistingIntake

export const intakeInitialState: IntakeState = { exists: false }

type Decision = Either<DomainError, readonly IntakeEvent[]>

const emit = (...events: IntakeEvent[]): Decision => right(events)
const unchanged: Decision = right([])
const fail = (code: string, message: string, details?: Record<string, string | number | boolean>): Decision =>
  left(domainError(code, message, details))

const invalidTransition = (command: IntakeCommandType, stage: IntakeStage): Decision =>
  fail('intake.invalid_transition', `${command} is not allowed while the intake is ${stage}`, {
    command,
    stage,
  })

/** A link accepts new visitors and intakes only while active; paused and retired are told apart. */
const acceptingLink = (link: IntakeLinkContext | null): Either<DomainError, IntakeLinkContext> => {
  if (link === null) return left(domainError('intake.link_not_found', 'No such referral link'))
  if (link.status === 'paused') return left(domainError('intake.link_paused', 'This referral link is paused'))
  if (link.status === 'retired')
    return left(domainError('intake.link_retired', 'This referral link no longer accepts intakes'))
  return right(link)
}

/** A channel the person agreed to be contacted on needs an address to contact them at. */
const missingContact = (communication: CommunicationPreferences, phi: IntakePhi): string | null => {
  const people = phi.caregiver === undefined ? [phi.patient] : [phi.patient, phi.caregiver]
  if (communication.email && !people.some((p) => p.email !== undefined)) return 'email'
  if ((communication.sms || communication.phone) && !people.some((p) => p.phone !== undefined))
    return communication.sms ? 'sms' : 'phone'
  return null
}

const decideSubmit = (
  command: Extract<IntakeCommand, { type: 'SubmitIntake' }>,
  intake: ExistingIntake,
): Decision => {
  if (intake.stage !== 'opened')
    return fail('intake.already_submitted', 'This intake was already submitted', { stage: intake.stage })
  if (command.context.link !== null && command.context.link.linkId !== intake.linkId)
    return fail('intake.context_mismatch', 'The link context does not belong to this intake')
  const accepting = acceptingLink(command.context.link)
  if (isLeft(accepting)) return accepting
  const link = accepting.right
  if (link.currentConsentVersion === null)
    return fail('intake.no_consent_published', 'The program has not published its consent text yet')
  if (command.data.consentVersion !== link.currentConsentVersion)
    return fail(
      'intake.consent_outdated',
      'The consent text changed; the current version must be agreed to',
      {
        currentVersion: link.currentConsentVersion,
      },
    )
  const { submittedBy, phi, communication } = command.data
  if (submittedBy.kind === 'caregiver' && phi.caregiver === undefined)
    return fail('intake.invalid', 'A caregiver submitting for a patient must give their own name', {
      field: 'phi.caregiver',
    })
  if (submittedBy.kind === 'patient' && phi.caregiver !== undefined)
    return fail('intake.invalid', 'A patient submitting for themselves has no caregiver', {
      field: 'phi.caregiver',
    })
  const channel = missingContact(communication, phi)
  if (channel !== null)
    return fail('intake.invalid', `Contact by ${channel} was agreed to but no address for it was given`, {
      field: `communication.${channel}`,
    })
  const now = command.meta.now
  return emit({
    type: 'IntakeSubmitted',
    data: {
      intakeId: intake.intakeId,
      patientId: command.data.patientId,
      submittedBy,
      consent: { version: command.data.consentVersion, agreedAt: now },
      communication,
      phi,
      submittedAt: now,
    },
  })
}

/** Conversion facts come from the engine (following the referral) or from the practice's staff. */
const mayRecordConversion = (meta: CommandMeta, intake: ExistingIntake): boolean =>
  meta.actor.kind === 'system' || isMemberOf(meta.actor, intake.practiceId)

const decideExisting = (command: IntakeCommand, intake: ExistingIntake): Decision => {
  const { intakeId, stage } = intake
  const now = command.meta.now
  switch (command.type) {
    case 'OpenReferralLink':
      // The same visit opened again (a reload) restates the fact.
      return command.data.linkId === intake.linkId
        ? unchanged
        : fail('intake.already_opened', 'This intake belongs to another link')
    case 'SubmitIntake':
      return decideSubmit(command, intake)
    default:
  }
  if (!mayRecordConversion(command.meta, intake))
    return fail('intake.forbidden', 'Only the engine or the practice may record the conversion of an intake')
  switch (command.type) {
    case 'RecordIntakeReferralSent':
      if (stage !== 'submitted') {
        if (intake.referralId === command.data.referralId) return unchanged
        return invalidTransition(command.type, stage)
      }
      return emit({
        type: 'IntakeReferralSent',
        data: { intakeId, referralId: command.data.referralId, sentAt: now },
      })
    case 'RecordIntakeAppointmentScheduled':
      if (stage === 'scheduled' && intake.appointmentAt === command.data.appointmentAt) return unchanged
      // Rescheduling, and rebooking after a no-show, are new scheduling facts.
      if (stage !== 'referred' && stage !== 'scheduled' && stage !== 'no_show')
        return invalidTransition(command.type, stage)
      return emit({
        type: 'IntakeAppointmentScheduled',
        data: { intakeId, appointmentAt: command.data.appointmentAt, scheduledAt: now },
      })
    case 'RecordIntakeAppointmentCompleted':
      if (stage === 'completed') return unchanged
      if (stage !== 'scheduled') return invalidTransition(command.type, stage)
      return emit({ type: 'IntakeAppointmentCompleted', data: { intakeId, completedAt: now } })
    case 'RecordIntakeNoShow':
      if (stage === 'no_show') return unchanged
      if (stage !== 'scheduled') return invalidTransition(command.type, stage)
      return emit({ type: 'IntakeNoShowRecorded', data: { intakeId, recordedAt: now } })
    default:
      return absurd(command)
  }
}

/**
 * One person's way through one referral link: opened → submitted (consent version, communication
 * preferences, sealed PHI) → referral sent → appointment scheduled → completed or no-show.
 * Opening and submitting need an active link (paused and retired links refuse with distinct
 * errors); a submission must agree to the program's current consent version. Later stages are
 * recorded by the engine or the practice, whatever the link's status: they are history.
 */
export const decideIntake = (command: IntakeCommand, state: IntakeState): Decision => {
  if (state.exists) return decideExisting(command, state)
  if (command.type !== 'OpenReferralLink') return fail('intake.not_opened', 'No intake with this id')
  if (command.context.link !== null && command.context.link.linkId !== command.data.linkId)
    return fail('intake.context_mismatch', 'The link context does not belong to this link')
  const accepting = acceptingLink(command.context.link)
  if (isLeft(accepting)) return accepting
  const link = accepting.right
  return emit({
    type: 'ReferralLinkOpened',
    data: {
      intakeId: command.data.intakeId,
      programId: link.programId,
      practiceId: link.practiceId,
      linkId: link.linkId,
      attribution: link.attribution,
      openedAt: command.meta.now,
    },
  })
}

/** Total: events that do not apply to the current state leave it unchanged. */
export const evolveIntake = (state: IntakeState, event: IntakeEvent): IntakeState => {
  if (event.type === 'ReferralLinkOpened') {
    if (state.exists) return state
    const { intakeId, programId, practiceId, linkId, attribution, openedAt } = event.data
    return {
      exists: true,
      intakeId,
      programId,
      practiceId,
      linkId,
      attribution,
      stage: 'opened',
      openedAt,
      patientId: null,
      submittedBy: null,
      consent: null,
      communication: null,
      referralId: null,
      appointmentAt: null,
    }
  }
  if (!state.exists) return state
  switch (event.type) {
    case 'IntakeSubmitted':
      return {
        ...state,
        stage: 'submitted',
        patientId: event.data.patientId,
        submittedBy: event.data.submittedBy,
        consent: event.data.consent,
        communication: event.data.communication,
      }
    case 'IntakeReferralSent':
      return { ...state, stage: 'referred', referralId: event.data.referralId }
    case 'IntakeAppointmentScheduled':
      return { ...state, stage: 'scheduled', appointmentAt: event.data.appointmentAt }
    case 'IntakeAppointmentCompleted':
      return { ...state, stage: 'completed' }
    case 'IntakeNoShowRecorded':
      return { ...state, stage: 'no_show' }
    default:
      return absurd(event)
  }
}

export const intakeDecider: Decider<IntakeCommand, IntakeEvent, IntakeState> = {
  decide: decideIntake,
  evolve: evolveIntake,
  initialState: intakeInitialState,
}
