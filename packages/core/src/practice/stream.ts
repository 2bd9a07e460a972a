import { PracticeId, type StreamId } from '../shared/ids.js'

const PREFIX = 'practice-'

/** The stream holding one practice's events: `practice-<practiceId>`. */
export const practiceStreamId = (id: PracticeId): StreamId => `${PREFIX}${id}` as StreamId

/** The practice a stream belongs to, or null if it is not a practice stream. */
export const practiceIdFromStreamId = (streamId: string): PracticeId | null => {
  if (!streamId.startsWith(PREFIX)) return null
  const id = streamId.slice(PREFIX.length)
  return PracticeId.is(id) ? id : null
}
