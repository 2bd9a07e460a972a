import * as t from 'io-ts'
import type { EventMetadata } from '../envelope/metadata.js'
import type { StreamId } from '../shared/ids.js'
import { canonicalJson } from './canonical-json.js'

/** Hashing port: SHA-256 of the UTF-8 bytes of `input`, as 64 lowercase hex digits. */
export interface Hasher {
  sha256Hex(input: string): string
}

const SHA256_HEX = /^[0-9a-f]{64}$/

/** The `integrity` field of event metadata: the hash of the stream's previous event and this one's. */
export const EventIntegrity = t.readonly(
  t.type({
    prev: t.refinement(t.string, (s) => SHA256_HEX.test(s), 'Sha256Hex'),
    hash: t.refinement(t.string, (s) => SHA256_HEX.test(s), 'Sha256Hex'),
  }),
  'EventIntegrity',
)
export type EventIntegrity = t.TypeOf<typeof EventIntegrity>

/** `prev` of a stream's first event. */
export const GENESIS_HASH = '0'.repeat(64)

/** What the chain covers: everything stored about an event except `recordedAt` and the position. */
export interface ChainedFields {
  readonly streamId: StreamId
  readonly version: number
  readonly id: string
  readonly type: string
  readonly schemaVersion: number
  /** The data exactly as stored, i.e. with PHI still sealed. */
  readonly data: unknown
  readonly metadata: EventMetadata
}

/** Metadata as covered by the chain: without the `integrity` field itself. */
export const metadataWithoutIntegrity = (metadata: EventMetadata): Record<string, unknown> => {
  const { integrity: _ignored, ...rest } = metadata as EventMetadata & { readonly integrity?: unknown }
  return rest
}

/** The stored integrity field of an event, or `undefined` when absent or malformed. */
export const integrityOf = (metadata: EventMetadata): EventIntegrity | undefined => {
  const value = (metadata as EventMetadata & { readonly integrity?: unknown }).integrity
  return EventIntegrity.is(value) ? value : undefined
}

/**
 * The chain rule. An event's hash is `sha256Hex(chainInput(prev, event))`, where `prev` is the
 * hash of the previous event of the same stream (`GENESIS_HASH` for version 1). The input is the
 * canonical JSON of a fixed record, so it is unambiguous whatever the field contents. Throws
 * `CanonicalJsonError` when the data or metadata is not JSON.
 */
export const chainInput = (prevHash: string, event: ChainedFields): string =>
  canonicalJson({
    chain: 'referrals-event-chain-v1',
    prev: prevHash,
    streamId: event.streamId,
    version: event.version,
    id: event.id,
    type: event.type,
    schemaVersion: event.schemaVersion,
    data: event.data,
    metadata: metadataWithoutIntegrity(event.metadata),
  })

export const eventHash = (hasher: Hasher, prevHash: string, event: ChainedFields): string =>
  hasher.sha256Hex(chainInput(prevHash, event))

/** Returns the metadata with its `integrity` field set (any previous one replaced). */
export const withIntegrity = (metadata: EventMetadata, integrity: EventIntegrity): EventMetadata => {
  const chained: EventMetadata & { readonly integrity: EventIntegrity } = {
    ...(metadataWithoutIntegrity(metadata) as EventMetadata),
    integrity,
  }
  return chained
}
