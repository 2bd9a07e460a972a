import { ProgramId, type StreamId } from '../shared/ids.js'

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
