import * as E from 'fp-ts/lib/Either.js'
import type { PhiCipher } from '../privacy/port.js'
import {
  type IntakeEvent,
  type IntakeState,
  intakeStreamId,
  type ProgramState,
  programStreamId,
} from '../program/index.js'
import { isRedactedPhi } from '../referral/index.js'
import type { IntakeId, PatientId, PracticeId, ProgramId } from '../shared/ids.js'
import { type Clock, type Instant, millisOf } from '../shared/time.js'
import type { EventStore, GlobalPosition } from '../store/port.js'
import { catchUpDecoded, serializedRefresh } from './catch-up.js'
import { loadAggregate } from './command-handler.js'
import { intakeAggregate, programAggregate } from './programs.js'

/**
 * When a referred patient who submitted an intake but has not booked is reminded: first `delayMs`
 * after the submission, then every `everyMs`, at most `maxCount` times (0: never).
 */
export interface IntakeReminderPolicy {
  readonly delayMs: number
  readonly everyMs: number
  readonly maxCount: number
}

export const defaultIntakeReminderPolicy: IntakeReminderPolicy = {
  delayMs: 48 * 3_600_000,
  everyMs: 72 * 3_600_000,
  maxCount: 2,
}

/** Stages in which nobody has booked yet. Scheduled, completed and no-show intakes get no reminder. */
const NOT_BOOKED: ReadonlySet<string> = new Set(['submitted', 'referred'])

/**
 * The reminder due now for an intake, by number (1…maxCount), or null. Only the latest due one:
 * reminders missed while no scheduler ran are not sent in a burst afterwards.
 */
export const dueIntakeReminderSequence = (
  state: IntakeState,
  policy: IntakeReminderPolicy,
  now: Instant,
): number | null => {
  if (!state.exists || !NOT_BOOKED.has(state.stage) || state.consent === null) return null
  if (policy.maxCount <= 0) return null
  const since = millisOf(now) - millisOf(state.consent.agreedAt) - policy.delayMs
  if (since < 0) return null
  const sequence = policy.everyMs > 0 ? Math.floor(since / policy.everyMs) + 1 : 1
  return Math.min(sequence, policy.maxCount)
}

/** The only facts a reminder may carry: no clinical detail, no patient detail. */
export interface IntakeReminderFacts {
  readonly clinicName: string
  readonly location: string | null
  readonly serviceCategory: string | null
  readonly schedulingUrl: string
}

/** The reminder text, built from the four permitted facts and nothing else. */
export const intakeReminderMessage = (
  facts: IntakeReminderFacts,
): { readonly subject: string; readonly text: string } => {
  const where = facts.location === null ? '' : ` (${facts.location})`
  const what =
    facts.serviceCategory === null ? 'your appointment' : `your ${facts.serviceCategory} appointment`
  return {
    subject: `Book ${what} with ${facts.clinicName}`,
    text: [
      `${facts.clinicName}${where} has not yet heard from you to book ${what}.`,
      `You can choose a time here: ${facts.schedulingUrl}`,
      'If you have already booked, please ignore this message.',
    ].join('\n'),
  }
}

/** One reminder to one consented channel; `address` is PHI (the patient's contact) and goes only to the outbox. */
export interface IntakeReminderTarget {
  readonly channel: 'email' | 'sms'
  readonly address: string
}

export interface IntakeReminder {
  /** `intake-reminder:<intakeId>:<sequence>`: the same for every scheduler, so the outbox keeps one. */
  readonly id: string
  readonly intakeId: IntakeId
  readonly programId: ProgramId
  readonly practiceId: PracticeId
  readonly patientId: PatientId
  readonly sequence: number
  readonly facts: IntakeReminderFacts
  /** Consented channels with an address; phone and mail are consented to but not automated. */
  readonly targets: readonly IntakeReminderTarget[]
}

export interface IntakeReminderScheduler {
  /**
   * The reminders due now (at most one per intake), each yielded once by this scheduler; queue
   * them in the outbox, which keeps one per id (another scheduler, or this one restarted, yields
   * the same ids again).
   */
  readonly due: () => Promise<readonly IntakeReminder[]>
}

/**
 * Reminders to referred patients who submitted an intake and have not booked. The intake streams
 * are followed (`intake-` prefix) into an in-memory table of intakes not yet booked; a due one is
 * read again from its stream (so a booking, completion or forgetting since is seen) and yields a
 * reminder only when it is still unbooked, its PHI is not forgotten, and it consented to a channel
 * the outbox automates (email, SMS) with an address for it. No state of its own: the reminder id
 * is deterministic, so repeated ticks and several schedulers queue it once.
 */
export const createIntakeReminderScheduler = (options: {
  readonly store: EventStore
  readonly clock: Clock
  readonly cipher?: PhiCipher
  readonly policy?: IntakeReminderPolicy
  /** Practice display names (the clinic name in the message). */
  readonly practiceName: (practiceId: PracticeId) => string | null
  /** The scheduling link of an intake's program and link. */
  readonly schedulingUrl: (intake: { readonly programId: ProgramId; readonly code: string | null }) => string
}): IntakeReminderScheduler => {
  const policy = options.policy ?? defaultIntakeReminderPolicy
  const aggregate = intakeAggregate(options.cipher)
  const open = new Map<IntakeId, IntakeState>()
  let position: GlobalPosition = 0n
  const refresh = serializedRefresh(
    catchUpDecoded({
      store: options.store,
      aggregate,
      streamPrefix: 'intake-',
      label: 'intake reminders',
      position: () => position,
      advance: (p) => {
        position = p
      },
      apply: (event: IntakeEvent) => {
        const id = event.data.intakeId
        const next = aggregate.decider.evolve(open.get(id) ?? aggregate.decider.initialState, event)
        if (next.exists && (next.stage === 'opened' || NOT_BOOKED.has(next.stage))) open.set(id, next)
        else open.delete(id)
      },
    }),
  )

  // The reminder this scheduler last yielded per intake: not read again until the next one is due.
  const yielded = new Map<IntakeId, number>()
  const programs = new Map<ProgramId, ProgramState>()
  const programOf = async (programId: ProgramId): Promise<ProgramState> => {
    const loaded = await loadAggregate(programAggregate, options.store, programStreamId(programId))()
    if (E.isLeft(loaded)) throw new Error(`intake reminders: ${loaded.left.message}`)
    programs.set(programId, loaded.right.state)
    return loaded.right.state
  }

  return {
    due: async () => {
      await refresh()
      const now = options.clock.now()
      const reminders: IntakeReminder[] = []
      for (const [intakeId, cached] of open) {
        const sequence = dueIntakeReminderSequence(cached, policy, now)
        if (sequence === null || yielded.get(intakeId) === sequence) continue
        // Read again: the cached state may be behind a booking, and the PHI may have been forgotten.
        const loaded = await loadAggregate(aggregate, options.store, intakeStreamId(intakeId))()
        if (E.isLeft(loaded)) throw new Error(`intake reminders: ${loaded.left.message}`)
        const state = loaded.right.state
        if (dueIntakeReminderSequence(state, policy, now) !== sequence || !state.exists) continue
        const submitted = loaded.right.events.findLast((e) => e.type === 'IntakeSubmitted')
        if (submitted?.type !== 'IntakeSubmitted' || isRedactedPhi(submitted.data.phi)) continue
        if (state.communication === null || state.patientId === null) continue
        // The person who filled the form in (a caregiver, when there is one) is contacted first.
        const { patient, caregiver } = submitted.data.phi
        const email = caregiver?.email ?? patient.email
        const phone = caregiver?.phone ?? patient.phone
        const targets: IntakeReminderTarget[] = []
        if (state.communication.email && email !== undefined)
          targets.push({ channel: 'email', address: email })
        if (state.communication.sms && phone !== undefined) targets.push({ channel: 'sms', address: phone })
        if (targets.length === 0) continue
        const program = programs.get(state.programId) ?? (await programOf(state.programId))
        const link = program.exists ? program.links.find((l) => l.linkId === state.linkId) : undefined
        const targetLocation =
          program.exists && program.target.kind === 'direct' ? (program.target.location ?? null) : null
        yielded.set(intakeId, sequence)
        reminders.push({
          id: `intake-reminder:${intakeId}:${sequence}`,
          intakeId,
          programId: state.programId,
          practiceId: state.practiceId,
          patientId: state.patientId,
          sequence,
          facts: {
            clinicName:
              options.practiceName(state.practiceId) ?? (program.exists ? program.name : 'Your clinic'),
            location: state.attribution.location ?? targetLocation,
            serviceCategory: state.attribution.serviceLine ?? null,
            schedulingUrl: options.schedulingUrl({ programId: state.programId, code: link?.code ?? null }),
          },
          targets,
        })
      }
      return reminders
    },
  }
}
