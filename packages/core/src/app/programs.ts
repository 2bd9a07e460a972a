import type { PhiCipher } from '../privacy/port.js'
import {
  type IntakeCommand,
  IntakeEvent,
  type IntakeState,
  intakeDecider,
  type ProgramCommand,
  ProgramEvent,
  type ProgramState,
  programDecider,
} from '../program/index.js'
import type { PatientId } from '../shared/ids.js'
import type { Aggregate } from './command-handler.js'
import { defineEventCatalog } from './event-catalog.js'
import { phiSealer } from './phi-sealer.js'

/**
 * The program aggregate as `executeCommand` runs it: stream `program-<programId>`, no PHI (links,
 * consent texts and incentive decisions identify no patient).
 */
export const programAggregate: Aggregate<ProgramCommand, ProgramEvent, ProgramState> = {
  name: 'program',
  decider: programDecider,
  catalog: defineEventCatalog({ codec: ProgramEvent }),
}

export const intakeEventCatalog = defineEventCatalog({ codec: IntakeEvent })

/**
 * The intake aggregate: stream `intake-<intakeId>`. With a cipher, the `phi` of `IntakeSubmitted`
 * is sealed under the data key of the patient the submission names (the same mechanism as referral
 * PHI), so forgetting the patient turns it into `{ redacted: true }` and the funnel still replays.
 */
export const intakeAggregate = (cipher?: PhiCipher): Aggregate<IntakeCommand, IntakeEvent, IntakeState> => ({
  name: 'intake',
  decider: intakeDecider,
  catalog: intakeEventCatalog,
  ...(cipher
    ? {
        sealer: phiSealer<IntakeState>(
          cipher,
          (state, data) =>
            (state.exists ? state.patientId : null) ??
            (data as { readonly patientId?: PatientId }).patientId ??
            null,
        ),
      }
    : {}),
})
