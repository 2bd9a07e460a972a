import { IntakeId, ProgramId, type StreamId } from '../shared/ids.js'

const PREFIX = 'program-'

/**
 * The stream holding one program's events: `program-<programId>`: its consent versions, its links
 * and (one stream, so caps hold under concurrency) every incentive decision.
 */
export const programStreamId = (id: ProgramId): StreamId => `${PREFIX}${id}` as StreamId

/** The program a stream belongs to, or null if it is not a program stream. */
export const programIdFromStreamId = (streamId: string): ProgramId | null => {
  if (!streamId.startsWith(PREFIX)) return null
  const id = streamId.slice(PREFIX.length)
  return ProgramId.is(id) ? id : null
}

const INTAKE_PREFIX = 'intake-'

/**
 * The stream of one person's way through one link: `intake-<intakeId>`. Referral tracking lives
 * here, apart from the clinical `referral-` streams; only the referral id links the two.
 */
export const intakeStreamId = (id: IntakeId): StreamId => `${INTAKE_PREFIX}${id}` as StreamId

export const intakeIdFromStreamId = (streamId: string): IntakeId | null => {
  if (!streamId.startsWith(INTAKE_PREFIX)) return null
  const id = streamId.slice(INTAKE_PREFIX.length)
  return IntakeId.is(id) ? id : null
}
