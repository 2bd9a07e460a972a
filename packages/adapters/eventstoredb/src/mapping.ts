/**
 * Pure translations between the core store contract and EventStoreDB's client types. No I/O here:
 * every function is unit-tested with the client's real constants and error classes.
 */
import {
  ANY,
  type AppendExpectedRevision,
  BACKWARDS,
  type CurrentRevision,
  type Direction,
  END,
  type EventData,
  FORWARDS,
  jsonEvent,
  NO_STREAM,
  type Position,
  type ReadRevision,
  type RecordedEvent,
  START,
  STREAM_EXISTS,
} from '@eventstore/db-client'
import type {
  EventId,
  EventMetadata,
  ExpectedVersion,
  GlobalPosition,
  Instant,
  NewEvent,
  ReadStreamOptions,
  StoredEvent,
  StoreError,
  StreamId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { canonicalUuid, isUuid } from './uuid.js'

// ---------------------------------------------------------------------------------------------
// Versions and revisions. A stream's version is its event count (0 = no stream); an EventStoreDB
// revision is the zero-based number of its last event. So version n ↔ revision n − 1, and version
// 0 ↔ NO_STREAM.
// ---------------------------------------------------------------------------------------------

/** The expected revision sent with every append: the adapter never relies on the client's default. */
export const toExpectedRevision = (expected: ExpectedVersion): AppendExpectedRevision => {
  switch (expected.kind) {
    case 'any':
      return ANY
    case 'no_stream':
      return NO_STREAM
    case 'stream_exists':
      return STREAM_EXISTS
    case 'exact':
      return expected.version === 0 ? NO_STREAM : BigInt(expected.version - 1)
  }
}

/** The inverse of `toExpectedRevision` (NO_STREAM reads back as `no_stream`, i.e. exact 0). */
export const fromExpectedRevision = (revision: AppendExpectedRevision): ExpectedVersion => {
  switch (revision) {
    case ANY:
      return { kind: 'any' }
    case NO_STREAM:
      return { kind: 'no_stream' }
    case STREAM_EXISTS:
      return { kind: 'stream_exists' }
    default:
      return { kind: 'exact', version: Number(revision) + 1 }
  }
}

/** A stream's current revision as a version: NO_STREAM → 0, revision r → r + 1. */
export const versionOfRevision = (current: CurrentRevision): number =>
  current === NO_STREAM ? 0 : Number(current) + 1

// ---------------------------------------------------------------------------------------------
// Reads.
// ---------------------------------------------------------------------------------------------

export interface StreamReadPlan {
  readonly direction: Direction
  readonly fromRevision: ReadRevision
  readonly maxCount: number
}

/**
 * How a `readStream` call is asked of EventStoreDB, or `null` when the answer is empty without
 * asking (a zero `maxCount`, or a backward read from version 0 or below).
 */
export const toStreamReadPlan = (options: ReadStreamOptions = {}): StreamReadPlan | null => {
  const maxCount = options.maxCount ?? Number.MAX_SAFE_INTEGER
  if (maxCount <= 0) return null
  if (options.direction === 'backward') {
    if (options.fromVersion === undefined) return { direction: BACKWARDS, fromRevision: END, maxCount }
    if (options.fromVersion < 1) return null
    return { direction: BACKWARDS, fromRevision: BigInt(options.fromVersion - 1), maxCount }
  }
  if (options.fromVersion === undefined || options.fromVersion <= 1) {
    return { direction: FORWARDS, fromRevision: START, maxCount }
  }
  return { direction: FORWARDS, fromRevision: BigInt(options.fromVersion - 1), maxCount }
}

/**
 * The `$all` position to start reading from for "strictly after `after`". Positions handed out by
 * this adapter are commit positions of events written through gRPC appends, for which EventStoreDB
 * records commit = prepare (each event is its own implicitly committed log record), so the pair
 * `{ commit: p, prepare: p }` names exactly that event's record.
 */
export const toAllPosition = (after: GlobalPosition): Position | typeof START =>
  after === 0n ? START : { commit: after, prepare: after }

// ---------------------------------------------------------------------------------------------
// Events. What EventStoreDB stores in an event's metadata: our envelope plus the two properties
// EventStoreDB's own projections understand (`$correlationId`, `$causationId`).
// ---------------------------------------------------------------------------------------------

export interface StoredMetadata {
  /** Our id exactly as given (EventStoreDB hands UUIDs back in lower case). */
  readonly eventId: string
  readonly schemaVersion: number
  readonly envelope: EventMetadata
  readonly $correlationId: string
  readonly $causationId?: string
}

/**
 * A `NewEvent` as EventStoreDB event data. The event id must be a UUID (EventStoreDB's id type); it
 * is sent in lower case and kept verbatim in the metadata so reads return it unchanged.
 */
export const toEventData = (event: NewEvent, index: number): E.Either<StoreError, EventData> => {
  if (!isUuid(event.id)) {
    return E.left({
      _tag: 'InvalidAppend',
      message: `event ${index + 1} of the append has an id that is not a UUID (EventStoreDB requires UUID event ids)`,
    })
  }
  if (event.data === undefined) {
    return E.left({ _tag: 'InvalidAppend', message: `event ${index + 1} of the append has no data` })
  }
  if (!(Number.isSafeInteger(event.schemaVersion) && event.schemaVersion >= 1)) {
    return E.left({ _tag: 'InvalidAppend', message: `event ${index + 1} has an invalid schema version` })
  }
  const metadata: StoredMetadata = {
    eventId: event.id,
    schemaVersion: event.schemaVersion,
    envelope: event.metadata,
    $correlationId: event.metadata.correlationId,
    ...(event.metadata.causationId === undefined ? {} : { $causationId: event.metadata.causationId }),
  }
  return E.right(
    jsonEvent({
      id: canonicalUuid(event.id),
      type: event.type,
      // The codec already produced JSON; EventStoreDB serialises it with JSON.stringify.
      data: event.data as Record<string, unknown>,
      metadata: { ...metadata },
    }),
  )
}

const schemaError = (streamId: string, revision: bigint, what: string): StoreError => ({
  _tag: 'StoreUnavailable',
  reason: 'schema',
  message: `event ${revision} of stream ${streamId} was not written by this adapter: ${what}`,
})

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null

/**
 * A recorded EventStoreDB event as a core `StoredEvent`: version = revision + 1, global position =
 * the commit position (see README: commit positions are a total order on `$all` that readers can
 * resume from without skipping), recorded-at = the server's `created` timestamp.
 */
export const fromRecordedEvent = (recorded: RecordedEvent): E.Either<StoreError, StoredEvent> => {
  const { streamId, revision } = recorded
  if (!recorded.isJson) return E.left(schemaError(streamId, revision, 'not JSON'))
  const meta = recorded.metadata
  if (!isRecord(meta) || !isRecord(meta.envelope) || typeof meta.schemaVersion !== 'number') {
    return E.left(schemaError(streamId, revision, 'no envelope in its metadata'))
  }
  if (recorded.position === undefined) {
    return E.left({
      _tag: 'StoreUnavailable',
      reason: 'schema',
      message: 'the server returned no event positions (EventStoreDB 22.6 or later is required)',
    })
  }
  return E.right({
    id: (typeof meta.eventId === 'string' ? meta.eventId : recorded.id) as EventId,
    type: recorded.type,
    schemaVersion: meta.schemaVersion,
    data: recorded.data,
    metadata: meta.envelope as unknown as EventMetadata,
    streamId: streamId as StreamId,
    version: Number(revision) + 1,
    globalPosition: recorded.position.commit,
    recordedAt: recorded.created.toISOString() as Instant,
  })
}

/** True for events the engine never reads: system streams (`$…`), e.g. stats and our checkpoints. */
export const isSystemStream = (streamId: string): boolean => streamId.startsWith('$')

export const matchesPrefixes = (streamId: string, prefixes: readonly string[] | undefined): boolean =>
  !isSystemStream(streamId) && (prefixes === undefined || prefixes.some((p) => streamId.startsWith(p)))

// ---------------------------------------------------------------------------------------------
// Checkpoint streams.
// ---------------------------------------------------------------------------------------------

export const CHECKPOINT_STREAM_PREFIX = '$referrals-checkpoint-'

/**
 * The stream that holds one subscription's checkpoints. Subscription ids in the safe id alphabet
 * are used as they are; anything else is percent-encoded, so distinct ids never share a stream.
 * The leading `$` makes it a system stream: excluded from the engine's reads and subscriptions.
 */
export const checkpointStreamName = (subscriptionId: string, prefix = CHECKPOINT_STREAM_PREFIX): string => {
  if (subscriptionId.length === 0) throw new TypeError('subscription id must not be empty')
  return (
    prefix + (/^[A-Za-z0-9_.:-]+$/.test(subscriptionId) ? subscriptionId : encodeURIComponent(subscriptionId))
  )
}

export const CHECKPOINT_EVENT_TYPE = 'CheckpointSaved'

/** Positions are stored as decimal strings: JSON has no 64-bit integers. */
export const checkpointData = (position: GlobalPosition): { readonly position: string } => ({
  position: position.toString(10),
})

export const positionFromCheckpointData = (data: unknown): GlobalPosition | null =>
  isRecord(data) && typeof data.position === 'string' && /^\d+$/.test(data.position)
    ? BigInt(data.position)
    : null
