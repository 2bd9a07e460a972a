import { SpecialtyId, type StreamId } from '../shared/ids.js'

const PREFIX = 'catalog-'

/** The stream holding one specialty's catalog: `catalog-<specialtyId>`. */
export const catalogStreamId = (id: SpecialtyId): StreamId => `${PREFIX}${id}` as StreamId

/** The specialty a stream belongs to, or null if it is not a catalog stream. */
export const specialtyIdFromStreamId = (streamId: string): SpecialtyId | null => {
  if (!streamId.startsWith(PREFIX)) return null
  const id = streamId.slice(PREFIX.length)
  return SpecialtyId.is(id) ? id : null
}
