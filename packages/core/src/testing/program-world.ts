import * as E from 'fp-ts/lib/Either.js'
import { executeCommand, loadAggregate } from '../app/command-handler.js'
import { intakeAggregate, programAggregate } from '../app/programs.js'
import type { PhiCipher } from '../privacy/port.js'
import {
  type CommunicationPreferences,
  type IncentiveRule,
  type IntakeCommand,
  type IntakePhi,
  type IntakeSubmitter,
  intakeLinkContext,
  intakeStreamId,
  type LinkAttribution,
  type LinkCode,
  type ProgramCommand,
  programStreamId,
} from '../program/index.js'
import type { Actor } from '../shared/actor.js'
import type { CommandMeta } from '../shared/decider.js'
import type { IdGenerator } from '../shared/id-generator.js'
import {
  type CommandId,
  type CorrelationId,
  type IntakeId,
  type PatientId,
  type PracticeId,
  type ProgramId,
  type ReferralId,
  type ReferralLinkId,
  unsafeId,
} from '../shared/ids.js'
import type { Clock } from '../shared/time.js'
import type { EventStore } from '../store/port.js'

/**
 * Creates programs and intakes through the program and intake commands (as the management routes
 * and the public intake page will), for tests of the processes that follow them.
 */
export const programWorld = (deps: {
  readonly store: EventStore
  readonly ids: IdGenerator
  readonly clock: Clock
  readonly cipher?: PhiCipher
}) => {
  const { store, ids, clock } = deps
  const intake = intakeAggregate(deps.cipher)
  const meta = (actor: Actor): CommandMeta => ({
    commandId: unsafeId<CommandId>(ids.next()),
    actor,
    now: clock.now(),
    correlationId: unsafeId<CorrelationId>('test'),
  })
  const ownerOf = (practiceId: PracticeId): Actor => ({
    kind: 'user',
    userId: unsafeId('owner'),
    platformRoles: [],
    memberships: [{ practiceId, role: 'owner' }],
  })
  const publicIntake: Actor = { kind: 'system', component: 'public-intake' }
  const system: Actor = { kind: 'system', component: 'test-funnel' }

  const program = async (
    programId: ProgramId,
    practiceId: PracticeId,
    command: Omit<ProgramCommand, 'meta'>,
  ): Promise<void> => {
    const r = await executeCommand(programAggregate, { store, ids }, programStreamId(programId), {
      ...command,
      meta: meta(ownerOf(practiceId)),
    } as ProgramCommand)()
    if (E.isLeft(r)) throw new Error(`program command ${command.type}: ${r.left.message}`)
  }

  const runIntake = async (intakeId: IntakeId, command: Omit<IntakeCommand, 'meta'>, actor: Actor) => {
    const r = await executeCommand(intake, { store, ids }, intakeStreamId(intakeId), {
      ...command,
      meta: meta(actor),
    } as IntakeCommand)()
    if (E.isLeft(r)) throw new Error(`intake command ${command.type}: ${r.left.message}`)
    return r.right
  }

  return {
    /** A program of `practiceId` with consent version 1, one link per entry and the given rules. */
    createProgram: async (options: {
      readonly programId: ProgramId
      readonly practiceId: PracticeId
      readonly location?: string
      readonly links: readonly {
        readonly linkId: ReferralLinkId
        readonly code: string
        readonly attribution: LinkAttribution
      }[]
      readonly rules?: readonly IncentiveRule[]
    }): Promise<void> => {
      const { programId, practiceId } = options
      await program(programId, practiceId, {
        type: 'CreateProgram',
        data: {
          programId,
          practiceId,
          name: 'Friends and family',
          target: {
            kind: 'direct',
            practiceId,
            ...(options.location === undefined ? {} : { location: options.location }),
          },
        },
      } as Omit<ProgramCommand, 'meta'>)
      await program(programId, practiceId, {
        type: 'PublishConsentVersion',
        data: {
          consentText: 'I agree to be contacted about scheduling.',
          disclosureText: 'Scheduling messages only.',
        },
      } as Omit<ProgramCommand, 'meta'>)
      for (const link of options.links)
        await program(programId, practiceId, {
          type: 'CreateReferralLink',
          data: { linkId: link.linkId, code: link.code as LinkCode, attribution: link.attribution },
        } as Omit<ProgramCommand, 'meta'>)
      for (const rule of options.rules ?? [])
        await program(programId, practiceId, { type: 'DefineIncentiveRule', data: { rule } } as Omit<
          ProgramCommand,
          'meta'
        >)
    },
    /** Opens `linkId` and submits an intake for `patientId`; optionally records the referral sent. */
    submitIntake: async (options: {
      readonly programId: ProgramId
      readonly linkId: ReferralLinkId
      readonly intakeId: IntakeId
      readonly patientId: PatientId
      readonly phi: IntakePhi
      readonly communication: CommunicationPreferences
      readonly referralId?: ReferralId
      readonly submittedBy?: IntakeSubmitter
    }) => {
      const loaded = await loadAggregate(programAggregate, store, programStreamId(options.programId))()
      if (E.isLeft(loaded)) throw new Error(loaded.left.message)
      const link = intakeLinkContext(loaded.right.state, options.linkId)
      await runIntake(
        options.intakeId,
        {
          type: 'OpenReferralLink',
          data: { intakeId: options.intakeId, linkId: options.linkId },
          context: { link },
        } as Omit<IntakeCommand, 'meta'>,
        publicIntake,
      )
      const r = await runIntake(
        options.intakeId,
        {
          type: 'SubmitIntake',
          data: {
            patientId: options.patientId,
            submittedBy: options.submittedBy ?? { kind: 'patient' },
            consentVersion: link?.currentConsentVersion,
            communication: options.communication,
            phi: options.phi,
          },
          context: { link },
        } as Omit<IntakeCommand, 'meta'>,
        publicIntake,
      )
      if (options.referralId !== undefined)
        return runIntake(
          options.intakeId,
          { type: 'RecordIntakeReferralSent', data: { referralId: options.referralId } },
          system,
        )
      return r
    },
    /** Records a later stage of an intake (scheduled, completed, no-show) as the conversion process would. */
    recordIntake: (intakeId: IntakeId, command: Omit<IntakeCommand, 'meta'>) =>
      runIntake(intakeId, command, system),
    recordReferralSent: (intakeId: IntakeId, referralId: ReferralId) =>
      runIntake(intakeId, { type: 'RecordIntakeReferralSent', data: { referralId } }, system),
    loadIntake: async (intakeId: IntakeId) => {
      const r = await loadAggregate(intake, store, intakeStreamId(intakeId))()
      if (E.isLeft(r)) throw new Error(r.left.message)
      return r.right
    },
    loadProgram: async (programId: ProgramId) => {
      const r = await loadAggregate(programAggregate, store, programStreamId(programId))()
      if (E.isLeft(r)) throw new Error(r.left.message)
      return r.right
    },
  }
}
