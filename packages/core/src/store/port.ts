import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import type { EventMetadata } from '../envelope/metadata.js'
import type { EventId, StreamId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'

/**
 * Event store contract (SPEC §2), implemented by every adapter and checked by the shared
 * conformance suite (`@referrals/core/testing`).
 *
 * Versions: a stream's version is the number of events in it; 0 means the stream does not exist.
 * The first event of a stream has version 1. Global positions are strictly increasing across the
 * whole store and are only compared, never computed with.
 */
export type ExpectedVersion =
  | { readonly kind: 'any' }
  | { readonly kind: 'no_stream' }
  | { readonly kind: 'stream_exists' }
  | { readonly kind: 'exact'; readonly version: number }

export const expected = {
  any: { kind: 'any' } as ExpectedVersion,
  noStream: { kind: 'no_stream' } as ExpectedVersion,
  streamExists: { kind: 'stream_exists' } as ExpectedVersion,
  exact: (version: number): ExpectedVersion => ({ kind: 'exact', version }),
}

/** A global position in the store's total order; `0n` is "before the first event". */
export type GlobalPosition = bigint

/** An event to append. `data` is JSON, already encoded by the event's codec (and encrypted PHI). */
export interface NewEvent {
  readonly id: EventId
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
  readonly metadata: EventMetadata
}

export interface StoredEvent extends NewEvent {
  readonly streamId: StreamId
  readonly version: number
  readonly globalPosition: GlobalPosition
  readonly recordedAt: Instant
}

export interface AppendRequest {
  readonly streamId: StreamId
  readonly expected: ExpectedVersion
  readonly events: readonly NewEvent[]
}

export interface AppendResult {
  readonly streamId: StreamId
  /** The stream's version after the append (the version of its last event). */
  readonly version: number
  /** Position of the last event appended (or, for an idempotent no-op, of the last stored one). */
  readonly position: GlobalPosition
}

/** Expected failures of a store. Messages never contain event data. */
export type StoreError =
  | {
      readonly _tag: 'WrongExpectedVersion'
      readonly streamId: StreamId
      readonly expected: ExpectedVersion
      /** The stream's actual version (0 = no stream). */
      readonly actual: number
      readonly message: string
    }
  | {
      /** Some but not all of the event ids of one append are already stored: the request is ambiguous. */
      readonly _tag: 'IdempotencyMismatch'
      readonly streamId: StreamId
      readonly message: string
    }
  | {
      readonly _tag: 'InvalidAppend'
      readonly message: string
    }
  | {
      /** Unreachable, timed out, denied, or otherwise broken infrastructure. */
      readonly _tag: 'StoreUnavailable'
      readonly reason: 'unavailable' | 'timeout' | 'access_denied' | 'schema' | 'unknown'
      readonly message: string
    }

export interface ReadStreamOptions {
  readonly direction?: 'forward' | 'backward'
  /** Inclusive. Forward default 1; backward default the last version. */
  readonly fromVersion?: number
  readonly maxCount?: number
}

export interface ReadAllOptions {
  /** Exclusive: events strictly after this position. Default `0n` (from the beginning). */
  readonly after?: GlobalPosition
  readonly maxCount?: number
  /** Only streams whose id starts with one of these prefixes, e.g. `['referral-', 'pool-']`. */
  readonly streamPrefixes?: readonly string[]
}

export interface EventStore {
  /**
   * Appends atomically with the expected version enforced by the store. Idempotent on event ids:
   * if every event id of the request is already stored in that stream, nothing is written and the
   * result reports the version and global position at which the request's last event was stored
   * (the expected version is not re-checked). If only some are stored, the request is ambiguous:
   * `IdempotencyMismatch`. An empty request, duplicate ids within one request or an invalid stream
   * id is `InvalidAppend`. Event ids are meant to be unique store-wide; what happens when an id
   * stored in one stream is appended to another is adapter-specific (documented per adapter).
   */
  readonly append: (request: AppendRequest) => TaskEither<StoreError, AppendResult>
  /**
   * Appends to several streams as one unit: all requests succeed or none is applied. Adapters
   * whose store cannot do this set `capabilities.atomicMultiStreamAppend = false` and the engine
   * uses its idempotent process manager instead.
   */
  readonly appendMany: (
    requests: readonly AppendRequest[],
    options?: AppendManyOptions,
  ) => TaskEither<StoreError, readonly AppendResult[]>
  readonly readStream: (
    streamId: StreamId,
    options?: ReadStreamOptions,
  ) => TaskEither<StoreError, readonly StoredEvent[]>
  /** Events in global order; a reader that resumes after the last position it saw never skips one. */
  readonly readAll: (options?: ReadAllOptions) => TaskEither<StoreError, readonly StoredEvent[]>
  /** Current version of a stream (0 when it does not exist). */
  readonly streamVersion: (streamId: StreamId) => TaskEither<StoreError, number>
  readonly subscribe: (options: SubscribeOptions) => Subscription
  readonly capabilities: StoreCapabilities
  readonly close: () => Promise<void>
}

export interface StoreCapabilities {
  readonly atomicMultiStreamAppend: boolean
  /**
   * The `CompanionWrite` kinds `appendMany` commits in its own transaction (absent: none). A caller
   * passes a companion only of a kind listed here and writes it apart otherwise.
   */
  readonly companionKinds?: readonly string[]
}

/**
 * A write owned by another component that a store commits in the same transaction as an
 * `appendMany` — all or nothing with the events. The HTTP layer uses it for an idempotency
 * completion, so a command's answer is durable exactly when its events are. Opaque to the core:
 * the store that lists `kind` in `capabilities.companionKinds` defines the shape
 * (`PostgresCompanionWrite` in `@referrals/postgres`, `InMemoryCompanionWrite` here).
 */
export interface CompanionWrite {
  readonly kind: string
}

export interface AppendManyOptions {
  /**
   * Written in the append's transaction, after its events; each kind must be one of
   * `capabilities.companionKinds` (else the append is refused with `InvalidAppend`).
   */
  readonly companions?: readonly CompanionWrite[]
}

/** Whether `store` commits companions of `kind` with its appends. */
export const acceptsCompanion = (store: Pick<EventStore, 'capabilities'>, kind: string): boolean =>
  store.capabilities.companionKinds?.includes(kind) === true

/** The refusal of a companion the store does not take (a caller's bug: check `acceptsCompanion`). */
export const refusedCompanion = (
  companions: readonly CompanionWrite[] | undefined,
  accepted: readonly string[],
): StoreError | undefined => {
  const bad = companions?.find((c) => !accepted.includes(c.kind))
  return bad === undefined
    ? undefined
    : {
        _tag: 'InvalidAppend',
        message: `appendMany: this store does not take companion writes of kind ${bad.kind}`,
      }
}

/**
 * A checkpointed catch-up subscription over `readAll`. The checkpoint is saved after each handled
 * event (compare-and-swap), so a restart resumes after the last handled event. Delivery is at
 * least once: a crash between the handler and the checkpoint save redelivers that one event, so
 * handlers are idempotent on `event.id`.
 */
export interface SubscribeOptions {
  readonly subscriptionId: string
  readonly handler: (event: StoredEvent) => Promise<void>
  readonly streamPrefixes?: readonly string[]
  readonly batchSize?: number
  /** Called when the handler or the store fails; the subscription stops. */
  readonly onError?: (error: unknown) => void
}

export interface Subscription {
  /** Resolves once every event appended before this call has been handled. */
  readonly caughtUp: () => Promise<void>
  readonly stop: () => Promise<void>
}

/** Where subscriptions keep their positions. Saves are compare-and-swap on the previous value. */
export interface CheckpointStore {
  readonly load: (subscriptionId: string) => Promise<GlobalPosition | null>
  /** Returns false (and saves nothing) when the stored checkpoint is not `previous`. */
  readonly save: (
    subscriptionId: string,
    previous: GlobalPosition | null,
    next: GlobalPosition,
  ) => Promise<boolean>
}
