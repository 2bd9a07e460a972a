import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import type { PhiCipher } from '../privacy/port.js'
import {
  type IntakeCommand,
  type IntakeState,
  incentiveConversion,
  intakeIdFromStreamId,
  intakeStreamId,
  type ProgramCommand,
  programStreamId,
  type ReferrerRef,
} from '../program/index.js'
import { referralStreamId } from '../referral/index.js'
import type { Actor } from '../shared/actor.js'
import type { CommandMeta } from '../shared/decider.js'
import type { IdGenerator } from '../shared/id-generator.js'
import {
  type CommandId,
  type CorrelationId,
  type IncentiveRuleId,
  type IntakeId,
  type PracticeId,
  ReferralId,
  type StreamId,
  unsafeId,
} from '../shared/ids.js'
import { type Clock, Instant } from '../shared/time.js'
import type { EventStore, GlobalPosition, StoredEvent } from '../store/port.js'
import { type CommandFailure, executeCommand, loadAggregate } from './command-handler.js'
import { intakeAggregate, programAggregate } from './programs.js'

/** The actor of every command the conversion process issues. */
export const INTAKE_CONVERSION_ACTOR: Actor = { kind: 'system', component: 'intake-conversions' }

/** Referral event types that are conversion facts of an intake. */
export const CONVERSION_EVENT_TYPES: ReadonlySet<string> = new Set([
  'AppointmentScheduled',
  'AppointmentRescheduled',
  'ReferralCompleted',
  'PatientNoShowRecorded',
])

/** Only the non-PHI fields the process needs; it never opens the referral's clinical PHI. */
const AppointmentAt = t.type({ at: Instant })
const ReferralSentData = t.type({ referralId: ReferralId })

const ID_MAX = 128

/** FNV-1a (32 bit), only to shorten an over-long id deterministically; not a security measure. */
const fnv1a = (s: string): string => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h.toString(16).padStart(8, '0')
}

const boundedId = (id: string): string =>
  id.length <= ID_MAX ? id : `${id.slice(0, ID_MAX - 9)}.${fnv1a(id)}`

/**
 * The command id recording one referral event on an intake: the same for every process and every
 * redelivery, and stored in the metadata of the intake event it produced. An intake stream that
 * already holds an event with this command id has recorded that referral event.
 */
export const conversionCommandId = (referralEventId: string): CommandId =>
  unsafeId<CommandId>(boundedId(`intake-conversion:${referralEventId}`))

type IntakeConversionPayload = Extract<
  IntakeCommand,
  {
    type: 'RecordIntakeAppointmentScheduled' | 'RecordIntakeAppointmentCompleted' | 'RecordIntakeNoShow'
  }
>

/** The intake command a referral event stands for, or null when it is no conversion fact. */
export const conversionCommandOf = (
  stored: Pick<StoredEvent, 'type' | 'data'>,
): Omit<IntakeConversionPayload, 'meta'> | null => {
  switch (stored.type) {
    case 'AppointmentScheduled':
    case 'AppointmentRescheduled': {
      const decoded = AppointmentAt.decode(stored.data)
      if (E.isLeft(decoded)) throw new Error(`intake conversions: undecodable ${stored.type}`)
      return { type: 'RecordIntakeAppointmentScheduled', data: { appointmentAt: decoded.right.at } }
    }
    case 'ReferralCompleted':
      return { type: 'RecordIntakeAppointmentCompleted', data: {} }
    case 'PatientNoShowRecorded':
      return { type: 'RecordIntakeNoShow', data: {} }
    default:
      return null
  }
}

export type ConversionOutcome =
  /** The intake event was written. */
  | 'recorded'
  /** This referral event was recorded before (a redelivery, another process) or restates the intake. */
  | 'already_recorded'
  /** The intake has moved past this fact (e.g. completed, then a stale scheduling event). */
  | 'stale'
  /** Not a conversion fact, or the referral came from no intake. */
  | 'ignored'

export interface IncentiveOutcome {
  readonly ruleId: IncentiveRuleId
  readonly outcome: 'awarded' | 'refused' | 'already_decided'
}

export interface ConversionStep {
  readonly outcome: ConversionOutcome
  readonly intakeId?: IntakeId
  readonly incentives: readonly IncentiveOutcome[]
}

export interface IntakeConversionDeps {
  readonly store: EventStore
  readonly ids: IdGenerator
  readonly clock: Clock
  /** The intake aggregate's cipher (the same as the engine's); needed to read sealed intakes. */
  readonly cipher?: PhiCipher
  /**
   * Is this referrer an existing patient of the program's practice (eligibility
   * `referrer_existing_patient`)? The service wires `createExistingPatientLookup`. Default: no, so
   * such rules refuse with `referrer_not_existing_patient` when nothing is wired.
   */
  readonly referrerIsExistingPatient?: (referrer: ReferrerRef, practiceId: PracticeId) => Promise<boolean>
  /** Attempts per command on concurrent writes to one stream (default 200: 50 racing conversions fit). */
  readonly maxAttempts?: number
}

export interface IntakeConversions {
  /** Handles one stored event (a `referral-` or `intake-` event); idempotent, safe to redeliver. */
  readonly handle: (stored: StoredEvent) => Promise<readonly ConversionStep[]>
  /** Decides every incentive rule of the intake's program for a completed intake (idempotent). */
  readonly decideIncentives: (
    intakeId: IntakeId,
    causation?: CommandId,
  ) => Promise<readonly IncentiveOutcome[]>
  /** The intake a referral came from, after reading the intake streams up to now. */
  readonly intakeOf: (referralId: ReferralId) => Promise<IntakeId | null>
}

const fail = (label: string, error: CommandFailure): Error =>
  // Domain and store messages name rules and streams, never values.
  new Error(`intake conversions: ${label}: ${error.message}`)

/**
 * The process following referral streams for intakes (issue 15, conversion). A referral sent from
 * an intake (`IntakeReferralSent` names it) that gets an appointment scheduled or rescheduled,
 * completed, or a no-show records `RecordIntakeAppointmentScheduled` / `Completed` / `NoShow` on
 * the intake, and a completed intake has every incentive rule of its program decided
 * (`DecideIncentive`, actor `system/intake-conversions`; the rule engine awards or refuses).
 *
 * Exactly-once effects from at-least-once delivery, without state of its own:
 * - each referral event is recorded under a deterministic command id (`conversionCommandId`); the
 *   intake stream is checked for it and appended at the exact version it was checked on, so a
 *   redelivery, a crash-restart or a second process finds it and writes nothing;
 * - an incentive is decided only when the program stream has no decision for (rule, intake), at
 *   the exact version that was checked, so it is never decided twice (and caps hold: all awards of
 *   a program are decided on its one stream);
 * - the referral→intake link is read from the intake streams; when `IntakeReferralSent` is handled
 *   the referral's earlier conversion events are recorded then, so the order in which the two
 *   streams are written does not matter.
 *
 * It reads only non-PHI fields of referral events (type, appointment time).
 */
export const createIntakeConversions = (deps: IntakeConversionDeps): IntakeConversions => {
  const { store, ids, clock } = deps
  const intake = intakeAggregate(deps.cipher)
  const maxAttempts = deps.maxAttempts ?? 200
  const existingPatient = deps.referrerIsExistingPatient ?? (async () => false)

  // referralId → intakeId, from the IntakeReferralSent events of the intake streams.
  const links = new Map<string, IntakeId>()
  let position: GlobalPosition = 0n
  const refreshLinks = async (): Promise<void> => {
    const PAGE = 500
    for (;;) {
      const page = await store.readAll({ after: position, maxCount: PAGE, streamPrefixes: ['intake-'] })()
      if (E.isLeft(page)) throw fail('reading intakes', page.left)
      for (const s of page.right) {
        if (s.type === 'IntakeReferralSent') {
          const id = intakeIdFromStreamId(s.streamId)
          const data = ReferralSentData.decode(s.data)
          if (id !== null && E.isRight(data)) links.set(data.right.referralId, id)
        }
        position = s.globalPosition
      }
      if (page.right.length < PAGE) return
    }
  }
  const intakeOf = async (referralId: ReferralId): Promise<IntakeId | null> => {
    const known = links.get(referralId)
    if (known !== undefined) return known
    await refreshLinks()
    return links.get(referralId) ?? null
  }

  const meta = (commandId: CommandId, causation?: string): CommandMeta => ({
    commandId,
    actor: INTAKE_CONVERSION_ACTOR,
    now: clock.now(),
    correlationId: unsafeId<CorrelationId>(commandId),
    ...(causation === undefined ? {} : { causationId: unsafeId<CommandId>(causation) }),
  })

  const loadIntake = async (streamId: StreamId) => {
    const loaded = await loadAggregate(intake, store, streamId)()
    if (E.isLeft(loaded)) throw fail('loading an intake', loaded.left)
    return loaded.right
  }

  const decideIncentives = async (intakeId: IntakeId, causation?: CommandId): Promise<IncentiveOutcome[]> => {
    const intakeState: IntakeState = (await loadIntake(intakeStreamId(intakeId))).state
    if (!intakeState.exists || intakeState.stage !== 'completed') return []
    const streamId = programStreamId(intakeState.programId)
    const first = await loadAggregate(programAggregate, store, streamId)()
    if (E.isLeft(first)) throw fail('loading a program', first.left)
    if (!first.right.state.exists) return []
    // Without a referrer there is nothing to look up (a rule refuses with `no_referrer`).
    const referrer = incentiveConversion(intakeState, false)?.referrer ?? null
    const conversion = incentiveConversion(
      intakeState,
      referrer === null ? false : await existingPatient(referrer, first.right.state.practiceId),
    )
    const outcomes: IncentiveOutcome[] = []
    for (const rule of first.right.state.incentiveRules) {
      const commandId = unsafeId<CommandId>(boundedId(`incentive:${rule.ruleId}:${intakeId}`))
      let outcome: IncentiveOutcome['outcome'] | null = null
      for (let attempt = 0; attempt < maxAttempts && outcome === null; attempt++) {
        const loaded = await loadAggregate(programAggregate, store, streamId)()
        if (E.isLeft(loaded)) throw fail('loading a program', loaded.left)
        const state = loaded.right.state
        if (
          state.exists &&
          state.incentiveDecisions.some((d) => d.ruleId === rule.ruleId && d.intakeId === intakeId)
        ) {
          outcome = 'already_decided'
          break
        }
        const command: ProgramCommand = {
          type: 'DecideIncentive',
          data: { ruleId: rule.ruleId, intakeId },
          context: { conversion },
          meta: meta(commandId, causation),
        }
        const r = await executeCommand(programAggregate, { store, ids }, streamId, command, {
          preloaded: loaded.right,
          expectedVersion: loaded.right.version,
        })()
        if (E.isLeft(r)) {
          if (r.left._tag === 'WrongExpectedVersion') continue
          throw fail('deciding an incentive', r.left)
        }
        const produced = r.right.produced.at(-1)
        outcome =
          produced === undefined
            ? 'already_decided'
            : produced.type === 'IncentiveAwarded'
              ? 'awarded'
              : 'refused'
      }
      if (outcome === null) throw new Error('intake conversions: too many concurrent incentive decisions')
      outcomes.push({ ruleId: rule.ruleId, outcome })
    }
    return outcomes
  }

  /** Records one referral event on one intake (at most once), then decides incentives if completed. */
  const record = async (intakeId: IntakeId, referralEvent: StoredEvent): Promise<ConversionStep> => {
    const payload = conversionCommandOf(referralEvent)
    if (payload === null) return { outcome: 'ignored', incentives: [] }
    const commandId = conversionCommandId(referralEvent.id)
    const streamId = intakeStreamId(intakeId)
    let outcome: ConversionOutcome | null = null
    let state: IntakeState = intake.decider.initialState
    for (let attempt = 0; attempt < maxAttempts && outcome === null; attempt++) {
      const loaded = await loadIntake(streamId)
      state = loaded.state
      if (loaded.stored.some((s) => s.metadata.commandId === commandId)) {
        outcome = 'already_recorded'
        break
      }
      const command = { ...payload, meta: meta(commandId, referralEvent.id) } as IntakeCommand
      const r = await executeCommand(intake, { store, ids }, streamId, command, {
        preloaded: loaded,
        expectedVersion: loaded.version,
      })()
      if (E.isLeft(r)) {
        if (r.left._tag === 'WrongExpectedVersion') continue
        if (r.left._tag === 'DomainError' && r.left.code === 'intake.invalid_transition') {
          outcome = 'stale'
          break
        }
        throw fail('recording a conversion', r.left)
      }
      state = r.right.state
      outcome = r.right.produced.length > 0 ? 'recorded' : 'already_recorded'
    }
    if (outcome === null) throw new Error('intake conversions: too many concurrent intake writes')
    // Also after a redelivery: a crash may have come between the completion and the decision.
    const incentives =
      state.exists && state.stage === 'completed' ? await decideIncentives(intakeId, commandId) : []
    return { outcome, intakeId, incentives }
  }

  const handle = async (stored: StoredEvent): Promise<readonly ConversionStep[]> => {
    if (stored.streamId.startsWith('intake-')) {
      if (stored.type !== 'IntakeReferralSent') return []
      const intakeId = intakeIdFromStreamId(stored.streamId)
      const data = ReferralSentData.decode(stored.data)
      if (intakeId === null || E.isLeft(data)) return []
      links.set(data.right.referralId, intakeId)
      // The referral may have moved on before the intake named it: record what happened so far.
      const read = await store.readStream(referralStreamId(data.right.referralId))()
      if (E.isLeft(read)) throw fail('reading a referral', read.left)
      const steps: ConversionStep[] = []
      for (const event of read.right)
        if (CONVERSION_EVENT_TYPES.has(event.type)) steps.push(await record(intakeId, event))
      return steps
    }
    if (!stored.streamId.startsWith('referral-') || !CONVERSION_EVENT_TYPES.has(stored.type)) return []
    const referralId = stored.streamId.slice('referral-'.length)
    if (!ReferralId.is(referralId)) return []
    const intakeId = await intakeOf(referralId)
    if (intakeId === null) return [{ outcome: 'ignored', incentives: [] }]
    return [await record(intakeId, stored)]
  }

  return { handle, decideIncentives, intakeOf }
}

/** Where the conversion process reads from: both stream families, in global order. */
export const INTAKE_CONVERSION_STREAM_PREFIXES: readonly string[] = ['referral-', 'intake-']
