import { type ProgramCommand, ProgramEvent, type ProgramState, programDecider } from '../program/index.js'
import type { Aggregate } from './command-handler.js'
import { defineEventCatalog } from './event-catalog.js'

/**
 * The program aggregate as `executeCommand` runs it: stream `program-<programId>`, no PHI (links,
 * consent texts and incentive decisions identify no patient).
 */
export const programAggregate: Aggregate<ProgramCommand, ProgramEvent, ProgramState> = {
  name: 'program',
  decider: programDecider,
  catalog: defineEventCatalog({ codec: ProgramEvent }),
}
