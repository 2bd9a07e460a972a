import {
  BACKWARDS,
  END,
  type AppendResult as EsdbAppendResult,
  type EventData,
  type EventStoreDBClient,
  NO_STREAM,
  type RecordedEvent,
  WrongExpectedVersionError,
} from '@eventstore/db-client'
import {
  type AppendRequest,
  type AppendResult,
  type CheckpointStore,
  checkRequestShape,
  type EventStore,
  type StoredEvent,
  type StoreError,
  StreamId,
  type Subscription,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import { createEventStoreDbCheckpointStore, type EventStoreDbCheckpointStoreOptions } from './checkpoints.js'
import { clientFromConnectionString } from './connection.js'
import { toStoreError, wrongExpectedVersion } from './errors.js'
import { fromRecordedEvent, toEventData, toExpectedRevision, toStreamReadPlan } from './mapping.js'
import { headOfAll, readAllFiltered, readLast, readRecorded } from './reads.js'
import { startCatchUpSubscription } from './subscription.js'
import { canonicalUuid } from './uuid.js'

export type EventStoreDbConnection =
  | { readonly client: EventStoreDBClient }
  /** e.g. `esdb://localhost:2113?tls=false`; see the README for clusters and TLS. */
  | { readonly connectionString: string }

export interface EventStoreDbEventStoreOptions {
  /** Where subscriptions keep their checkpoints. Default: streams in EventStoreDB itself. */
  readonly checkpoints?: CheckpointStore
  readonly checkpointOptions?: EventStoreDbCheckpointStoreOptions
  /**
   * How many of a stream's newest events a conflicting append inspects to tell an idempotent
   * repeat from a conflict. Default 10,000.
   */
  readonly idempotencyScanLimit?: number
  /**
   * `appendMany` with requests for more than one stream: `'reject'` (default) answers InvalidAppend,
   * because EventStoreDB cannot write several streams atomically; `'sequential'` applies them one
   * after another and stops at the first failure, leaving the earlier ones applied.
   */
  readonly multiStreamAppend?: 'reject' | 'sequential'
  /** A filtered `$all` read that receives nothing for this long fails with a timeout. Default 30 s. */
  readonly readIdleTimeoutMs?: number
}

/** Where a stored event is: its revision in the stream and its commit position in `$all`. */
interface Located {
  readonly revision: bigint
  readonly commit: bigint
}

/**
 * The core `EventStore` on EventStoreDB (SPEC §2). Every append carries an explicit expected
 * revision; conflicts are told apart from idempotent repeats by reading the stream back (README,
 * "Idempotency"). Multi-stream appends are not atomic: `capabilities.atomicMultiStreamAppend` is
 * false and the engine uses the process manager (`createTwoStreamWriter`).
 */
export const createEventStoreDbEventStore = (
  connection: EventStoreDbConnection,
  options: EventStoreDbEventStoreOptions = {},
): EventStore => {
  const ownsClient = 'connectionString' in connection
  const client = ownsClient ? clientFromConnectionString(connection.connectionString) : connection.client
  const checkpoints =
    options.checkpoints ?? createEventStoreDbCheckpointStore(client, options.checkpointOptions)
  const scanLimit = options.idempotencyScanLimit ?? 10_000
  const idleTimeoutMs = options.readIdleTimeoutMs ?? 30_000
  const subscriptions = new Set<Subscription>()

  /** Where each of `ids` (canonical form) is stored in the stream, scanning newest first. */
  const locateIds = async (
    streamId: StreamId,
    ids: readonly string[],
  ): Promise<E.Either<StoreError, Map<string, Located>>> => {
    const wanted = new Set(ids)
    const found = new Map<string, Located>()
    const page = 500
    let from: bigint | typeof END = END
    let scanned = 0
    while (found.size < wanted.size && scanned < scanLimit) {
      const r = await readRecorded(
        client,
        streamId,
        { direction: BACKWARDS, fromRevision: from, maxCount: Math.min(page, scanLimit - scanned) },
        'append',
      )
      if (E.isLeft(r)) return r
      for (const e of r.right) {
        const id = canonicalUuid(e.id)
        if (wanted.has(id) && e.position !== undefined)
          found.set(id, { revision: e.revision, commit: e.position.commit })
      }
      scanned += r.right.length
      const oldest = r.right.at(-1)
      if (oldest === undefined || oldest.revision === 0n || r.right.length < page) break
      from = oldest.revision - 1n
    }
    return E.right(found)
  }

  const resultAt = (streamId: StreamId, at: Located): AppendResult => ({
    streamId,
    version: Number(at.revision) + 1,
    position: at.commit,
  })

  /**
   * Are the request's ids already in the stream? All: success at its last event. Some:
   * IdempotencyMismatch. None: null (the caller reports the conflict).
   */
  const storedResult = async (request: AppendRequest): Promise<E.Either<StoreError, AppendResult> | null> => {
    const ids = request.events.map((e) => canonicalUuid(e.id))
    const found = await locateIds(request.streamId, ids)
    if (E.isLeft(found)) return found
    if (found.right.size === ids.length) {
      return E.right(resultAt(request.streamId, found.right.get(ids[ids.length - 1] as string) as Located))
    }
    if (found.right.size > 0) {
      return E.left({
        _tag: 'IdempotencyMismatch',
        streamId: request.streamId,
        message: `some but not all event ids of this append to ${request.streamId} are already stored`,
      })
    }
    return null
  }

  /**
   * After a successful write: the position of the request's last event. The append response
   * carries the write's transaction position (the first event's for a batch, none for an
   * idempotent repeat), so the event at the new revision is read back and checked by id.
   */
  const afterWrite = async (
    request: AppendRequest,
    written: EsdbAppendResult,
  ): Promise<E.Either<StoreError, AppendResult>> => {
    const lastId = canonicalUuid(request.events[request.events.length - 1]?.id ?? '')
    const r = await readRecorded(
      client,
      request.streamId,
      { direction: BACKWARDS, fromRevision: written.nextExpectedRevision, maxCount: 1 },
      'append',
    )
    if (E.isLeft(r)) return r
    const at = r.right[0]
    if (at !== undefined && canonicalUuid(at.id) === lastId && at.position !== undefined) {
      return E.right(resultAt(request.streamId, { revision: at.revision, commit: at.position.commit }))
    }
    const stored = await storedResult(request)
    return (
      stored ??
      E.left({
        _tag: 'StoreUnavailable',
        reason: 'unknown',
        message: 'appended events could not be read back',
      })
    )
  }

  const onConflict = async (
    request: AppendRequest,
    error: WrongExpectedVersionError,
  ): Promise<E.Either<StoreError, AppendResult>> =>
    (await storedResult(request)) ?? E.left(wrongExpectedVersion(error, request.streamId, request.expected))

  const append =
    (request: AppendRequest): TaskEither<StoreError, AppendResult> =>
    async () => {
      const shape = checkRequestShape(request, StreamId.is)
      if (E.isLeft(shape)) return shape
      if (new Set(request.events.map((e) => canonicalUuid(e.id))).size !== request.events.length) {
        return E.left({ _tag: 'InvalidAppend', message: `append to ${request.streamId} repeats an event id` })
      }
      const data: EventData[] = []
      for (const [i, event] of request.events.entries()) {
        const mapped = toEventData(event, i)
        if (E.isLeft(mapped)) return mapped
        data.push(mapped.right)
      }
      try {
        const written = await client.appendToStream(request.streamId, data, {
          expectedRevision: toExpectedRevision(request.expected),
        })
        if (!written.success) {
          // A client built with `throwOnAppendFailure=false` reports the conflict in the result.
          const current = written.nextExpectedRevision < 0n ? NO_STREAM : written.nextExpectedRevision
          const conflict = new WrongExpectedVersionError(undefined, {
            streamName: request.streamId,
            expected: toExpectedRevision(request.expected),
            current,
          })
          return await onConflict(request, conflict)
        }
        return await afterWrite(request, written)
      } catch (error) {
        if (error instanceof WrongExpectedVersionError) return await onConflict(request, error)
        return E.left(toStoreError(error, 'append'))
      }
    }

  const appendMany =
    (requests: readonly AppendRequest[]): TaskEither<StoreError, readonly AppendResult[]> =>
    async () => {
      if (requests.length > 1 && (options.multiStreamAppend ?? 'reject') === 'reject') {
        return E.left({
          _tag: 'InvalidAppend',
          message:
            'EventStoreDB cannot append to several streams atomically: append one stream at a time (see capabilities.atomicMultiStreamAppend)',
        })
      }
      if (new Set(requests.map((r) => r.streamId)).size !== requests.length) {
        return E.left({ _tag: 'InvalidAppend', message: 'appendMany takes at most one request per stream' })
      }
      const results: AppendResult[] = []
      for (const request of requests) {
        const r = await append(request)()
        if (E.isLeft(r)) return r
        results.push(r.right)
      }
      return E.right(results)
    }

  const mapAll = (recorded: readonly RecordedEvent[]): E.Either<StoreError, StoredEvent[]> => {
    const out: StoredEvent[] = []
    for (const r of recorded) {
      const e = fromRecordedEvent(r)
      if (E.isLeft(e)) return e
      out.push(e.right)
    }
    return E.right(out)
  }

  return {
    append,
    appendMany,
    readStream: (streamId, readOptions) => async () => {
      const plan = toStreamReadPlan(readOptions)
      if (plan === null) return E.right([])
      const r = await readRecorded(client, streamId, plan, 'read stream')
      return E.isLeft(r) ? r : mapAll(r.right)
    },
    readAll:
      (readOptions = {}) =>
      async () => {
        const head = await headOfAll(client, 'read all')
        if (E.isLeft(head)) return head
        return readAllFiltered(client, {
          after: readOptions.after ?? 0n,
          maxCount: readOptions.maxCount ?? Number.MAX_SAFE_INTEGER,
          prefixes: readOptions.streamPrefixes,
          until: head.right,
          idleTimeoutMs,
        })
      },
    streamVersion: (streamId) => async () => {
      const last = await readLast(client, streamId, 'stream version')
      return E.isLeft(last) ? last : E.right(last.right === null ? 0 : Number(last.right.revision) + 1)
    },
    subscribe: (subscribeOptions) => {
      const subscription = startCatchUpSubscription({ client, checkpoints, idleTimeoutMs }, subscribeOptions)
      subscriptions.add(subscription)
      return {
        caughtUp: subscription.caughtUp,
        stop: async () => {
          subscriptions.delete(subscription)
          await subscription.stop()
        },
      }
    },
    capabilities: { atomicMultiStreamAppend: false },
    close: async () => {
      await Promise.all([...subscriptions].map((s) => s.stop()))
      subscriptions.clear()
      if (ownsClient) await client.dispose()
    },
  }
}
