import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import type { EventMetadata } from '../envelope/metadata.js'
import { isPatientForgottenError } from '../privacy/port.js'
import type { CommandMeta, Decider, DomainEvent } from '../shared/decider.js'
import { type DomainError, domainError } from '../shared/errors.js'
import type { IdGenerator } from '../shared/id-generator.js'
import { type EventId, type StreamId, unsafeId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import {
  type AppendRequest,
  acceptsCompanion,
  type CompanionWrite,
  type EventStore,
  expected,
  type NewEvent,
  type StoredEvent,
  type StoreError,
} from '../store/port.js'
import type { EventCatalog } from './event-catalog.js'

/** Where an event's data goes through on its way to and from the store (PHI encryption hooks here). */
export interface EventDataSealer<S> {
  readonly seal: (ctx: SealTarget, data: unknown, stateBefore: S) => Promise<unknown>
  readonly open: (ctx: SealTarget, data: unknown) => Promise<unknown>
}
export interface SealTarget {
  readonly streamId: StreamId
  readonly eventId: EventId
  readonly type: string
}

/** One aggregate type: its decider, its event catalog and how its PHI is sealed (if it has any). */
export interface Aggregate<C extends { readonly meta: CommandMeta }, Ev extends DomainEvent, S> {
  readonly name: string
  readonly decider: Decider<C, Ev, S>
  readonly catalog: EventCatalog<Ev>
  readonly sealer?: EventDataSealer<S>
}

export interface CommandDeps {
  readonly store: EventStore
  readonly ids: IdGenerator
}

export type CommandFailure = DomainError | StoreError

export interface Loaded<Ev, S> {
  readonly streamId: StreamId
  readonly version: number
  readonly state: S
  readonly events: readonly Ev[]
  readonly stored: readonly StoredEvent[]
}

export interface CommandResult<Ev, S> extends Loaded<Ev, S> {
  /**
   * The events this command wrote (possibly none: an idempotent no-op), with those its commit
   * added in the same transaction (routing). `stored` holds the stream as read before the command.
   */
  readonly produced: readonly Ev[]
  /**
   * When the referral last changed: the `occurredAt` of the last event this command wrote, or the
   * `recordedAt` of the last stored event if it wrote none (undefined for an empty stream).
   */
  readonly updatedAt?: Instant
  /** The commit wrote `options.companion`'s write in the command's transaction. */
  readonly companionWritten?: true
}

const metadataOf = (meta: CommandMeta): EventMetadata => ({
  actor: meta.actor,
  correlationId: meta.correlationId,
  commandId: meta.commandId,
  occurredAt: meta.now,
  ...(meta.causationId === undefined ? {} : { causationId: meta.causationId }),
})

/** Opens (unseals) and decodes one stored event through the aggregate's sealer and catalog. */
export const decodeStored = async <C extends { readonly meta: CommandMeta }, Ev extends DomainEvent, S>(
  aggregate: Aggregate<C, Ev, S>,
  stored: StoredEvent,
): Promise<E.Either<DomainError, Ev>> => {
  const data = aggregate.sealer
    ? await aggregate.sealer.open(
        { streamId: stored.streamId, eventId: stored.id, type: stored.type },
        stored.data,
      )
    : stored.data
  return aggregate.catalog.decode({ type: stored.type, schemaVersion: stored.schemaVersion, data })
}

/** Reads and decodes a stream (through the sealer and the catalog's upcasters) into state. */
export const loadAggregate =
  <C extends { readonly meta: CommandMeta }, Ev extends DomainEvent, S>(
    aggregate: Aggregate<C, Ev, S>,
    store: EventStore,
    streamId: StreamId,
    until?: (e: StoredEvent) => boolean,
  ): TaskEither<CommandFailure, Loaded<Ev, S>> =>
  async () => {
    const read = await store.readStream(streamId)()
    if (E.isLeft(read)) return read
    const stored = until ? read.right.filter((e) => !until(e)) : read.right
    const events: Ev[] = []
    let state = aggregate.decider.initialState
    for (const s of stored) {
      const decoded = await decodeStored(aggregate, s)
      if (E.isLeft(decoded)) return decoded
      events.push(decoded.right)
      state = aggregate.decider.evolve(state, decoded.right)
    }
    return E.right({ streamId, version: stored.length, state, events, stored })
  }

/** Turns decided events into store events: codec-encoded, sealed, with ids and metadata. */
export const toNewEvents = async <C extends { readonly meta: CommandMeta }, Ev extends DomainEvent, S>(
  aggregate: Aggregate<C, Ev, S>,
  ids: IdGenerator,
  streamId: StreamId,
  stateBefore: S,
  events: readonly Ev[],
  meta: CommandMeta,
): Promise<NewEvent[]> => {
  const metadata = metadataOf(meta)
  const out: NewEvent[] = []
  for (const event of events) {
    const id = unsafeId<EventId>(ids.next())
    const encoded = aggregate.catalog.encode(event)
    const data = aggregate.sealer
      ? await aggregate.sealer.seal({ streamId, eventId: id, type: encoded.type }, encoded.data, stateBefore)
      : encoded.data
    out.push({ id, type: encoded.type, schemaVersion: encoded.schemaVersion, data, metadata })
  }
  return out
}

/** The refusal of a command that would record new PHI of a forgotten patient (names no patient). */
export const patientForgottenError = (): DomainError =>
  domainError('patient.forgotten', 'This patient was forgotten; new patient data cannot be recorded')

/**
 * `toNewEvents`, with a forgotten patient (the sealer's `PatientForgottenError`) reported as the
 * domain error `patient.forgotten` instead of thrown. Any other failure still throws.
 */
export const toNewEventsOrRefusal = async <
  C extends { readonly meta: CommandMeta },
  Ev extends DomainEvent,
  S,
>(
  ...args: Parameters<typeof toNewEvents<C, Ev, S>>
): Promise<E.Either<DomainError, NewEvent[]>> => {
  try {
    return E.right(await toNewEvents(...args))
  } catch (error) {
    if (isPatientForgottenError(error)) return E.left(patientForgottenError())
    throw error
  }
}

export interface ExecuteOptions {
  /** Optimistic concurrency from the client (`If-Match`): the version the client saw. No retry. */
  readonly expectedVersion?: number
  /** Reload-and-decide-again attempts on a concurrent write when no version was pinned. Default 5. */
  readonly maxRetries?: number
}

/** What a command decided, ready to be written at the version it was decided on. */
export interface Decided<Ev, S> {
  readonly streamId: StreamId
  /** The version the command was decided on (the append's expected version). */
  readonly version: number
  readonly stateBefore: S
  readonly stateAfter: S
  /** The stream's events followed by the decided ones, oldest first. */
  readonly events: readonly Ev[]
  readonly decided: readonly Ev[]
  /** `decided`, encoded and sealed. */
  readonly newEvents: readonly NewEvent[]
  /** The command's `meta.now` (the decided events' occurredAt). */
  readonly decidedAt: Instant
  /** From `PreloadedExecuteOptions.companion`: the caller's write for the command's transaction. */
  readonly companion?: CompanionOf<S>
}

/** What a command's answer is built from: the state, version and last change it leaves (its commit's events included). */
export interface CommandOutcome<S> {
  readonly state: S
  readonly version: number
  readonly updatedAt: Instant
}

/**
 * Given the outcome a commit is about to write, a write of the caller's to commit in the same
 * transaction (the HTTP layer's idempotency completion: the answer stored exactly when the events
 * are), or undefined. A commit passes it to the store only where the store takes its kind
 * (`acceptsCompanion`) and reports that in `companionWritten`; otherwise the caller writes it apart.
 * It may be called once per attempt (a conflict decides again): only the committed attempt's counts.
 */
export type CompanionOf<S> = (outcome: CommandOutcome<S>) => CompanionWrite | undefined

/** A commit that wrote the decided events, possibly with events of its own in the same transaction. */
export interface Committed<Ev> {
  /** The stream's version after the write. */
  readonly version: number
  /** Events the commit appended to this stream after the decided ones (e.g. a routing decision). */
  readonly added: readonly Ev[]
  /** The `occurredAt` of the last added event (when there are any). */
  readonly addedAt?: Instant
  /** The decided command's companion was written in this transaction. */
  readonly companionWritten?: true
}

/**
 * Writes a decided command. The default appends `newEvents` at `exact(version)`; a commit may
 * write more in the same transaction (routing writes the pool decision and the referral's routing
 * events with the command's events in one `appendMany`). A `WrongExpectedVersion` on the
 * command's stream makes `executeCommand` decide again on the new state.
 */
export type Commit<Ev, S> = (decided: Decided<Ev, S>) => Promise<E.Either<CommandFailure, Committed<Ev>>>

/** The stream as the caller just read it: the first attempt decides on it instead of reading again. */
export interface PreloadedExecuteOptions<Ev, S> extends ExecuteOptions {
  readonly preloaded?: Loaded<Ev, S>
  readonly commit?: Commit<Ev, S>
  readonly companion?: CompanionOf<S>
}

/** The default commit: the decided events alone, at the version they were decided on. */
export const appendDecided =
  (store: EventStore) =>
  async <Ev, S>(d: Decided<Ev, S>): Promise<E.Either<CommandFailure, Committed<Ev>>> => {
    const request: AppendRequest = {
      streamId: d.streamId,
      expected: d.version === 0 ? expected.noStream : expected.exact(d.version),
      events: d.newEvents,
    }
    const companion = companionFor(store, d, {
      state: d.stateAfter,
      version: d.version + d.newEvents.length,
      updatedAt: d.decidedAt,
    })
    if (companion !== undefined) {
      const appended = await store.appendMany([request], { companions: [companion] })()
      if (E.isLeft(appended)) return appended
      return E.right({
        version: appended.right[0]?.version ?? request.events.length + d.version,
        added: [],
        companionWritten: true,
      })
    }
    const appended = await store.append(request)()
    return E.isLeft(appended) ? appended : E.right({ version: appended.right.version, added: [] })
  }

/** The decided command's companion for `outcome`, if it has one the store takes. */
export const companionFor = <S>(
  store: Pick<EventStore, 'capabilities'>,
  d: Pick<Decided<unknown, S>, 'companion'>,
  outcome: CommandOutcome<S>,
): CompanionWrite | undefined => {
  const companion = d.companion?.(outcome)
  return companion !== undefined && acceptsCompanion(store, companion.kind) ? companion : undefined
}

/**
 * Load → decide → append with `exact(version)`. Business rules run against the state the append
 * is conditional on, so a concurrent writer makes the append fail and the command is decided again
 * on the new state (or, with a pinned `expectedVersion`, fails with the conflict). A command whose
 * events carry new PHI of a forgotten patient fails with `patient.forgotten` and writes nothing.
 */
export const executeCommand =
  <C extends { readonly meta: CommandMeta }, Ev extends DomainEvent, S>(
    aggregate: Aggregate<C, Ev, S>,
    deps: CommandDeps,
    streamId: StreamId,
    command: C,
    options: PreloadedExecuteOptions<Ev, S> = {},
  ): TaskEither<CommandFailure, CommandResult<Ev, S>> =>
  async () => {
    const attempts = options.expectedVersion === undefined ? (options.maxRetries ?? 5) + 1 : 1
    let last: CommandFailure | null = null
    for (let attempt = 0; attempt < attempts; attempt++) {
      const loaded =
        attempt === 0 && options.preloaded !== undefined
          ? E.right(options.preloaded)
          : await loadAggregate(aggregate, deps.store, streamId)()
      if (E.isLeft(loaded)) return loaded
      const { state, version } = loaded.right
      if (options.expectedVersion !== undefined && options.expectedVersion !== version) {
        return E.left({
          _tag: 'WrongExpectedVersion',
          streamId,
          expected: expected.exact(options.expectedVersion),
          actual: version,
          message: `${streamId} changed since version ${options.expectedVersion}; it is now at ${version}`,
        })
      }
      const decided = aggregate.decider.decide(command, state)
      if (E.isLeft(decided)) return decided
      if (decided.right.length === 0) {
        const updatedAt = loaded.right.stored.at(-1)?.recordedAt
        return E.right({ ...loaded.right, produced: [], ...(updatedAt === undefined ? {} : { updatedAt }) })
      }
      const newEvents = await toNewEventsOrRefusal(
        aggregate,
        deps.ids,
        streamId,
        state,
        decided.right,
        command.meta,
      )
      if (E.isLeft(newEvents)) return newEvents
      const stateAfter = decided.right.reduce(aggregate.decider.evolve, state)
      const events = [...loaded.right.events, ...decided.right]
      const commit = options.commit ?? appendDecided(deps.store)
      const committed = await commit({
        streamId,
        version,
        stateBefore: state,
        stateAfter,
        events,
        decided: decided.right,
        newEvents: newEvents.right,
        decidedAt: command.meta.now,
        ...(options.companion === undefined ? {} : { companion: options.companion }),
      })
      if (E.isRight(committed)) {
        const { added } = committed.right
        return E.right({
          streamId,
          version: committed.right.version,
          state: added.reduce(aggregate.decider.evolve, stateAfter),
          events: added.length === 0 ? events : [...events, ...added],
          stored: loaded.right.stored,
          produced: added.length === 0 ? decided.right : [...decided.right, ...added],
          updatedAt: committed.right.addedAt ?? command.meta.now,
          ...(committed.right.companionWritten === true ? { companionWritten: true as const } : {}),
        })
      }
      if (committed.left._tag !== 'WrongExpectedVersion' || committed.left.streamId !== streamId)
        return committed
      last = committed.left
    }
    return E.left(last as CommandFailure)
  }
