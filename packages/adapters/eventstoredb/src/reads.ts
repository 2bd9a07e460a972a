/**
 * Reads shared by the store, the subscriptions and the checkpoint store: one stream, the head of
 * `$all`, and `$all` after a position through EventStoreDB's server-side stream-name filter.
 */
import {
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  BACKWARDS,
  END,
  type EventStoreDBClient,
  type Filter,
  type RecordedEvent,
  StreamNotFoundError,
  streamNameFilter,
} from '@eventstore/db-client'
import type { GlobalPosition, StoredEvent, StoreError } from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { type Operation, toStoreError } from './errors.js'
import { fromRecordedEvent, matchesPrefixes, type StreamReadPlan, toAllPosition } from './mapping.js'

/** Reads one stream as recorded events; a missing stream is empty (StreamNotFoundError → []). */
export const readRecorded = async (
  client: EventStoreDBClient,
  streamName: string,
  plan: StreamReadPlan,
  operation: Operation,
): Promise<E.Either<StoreError, RecordedEvent[]>> => {
  const out: RecordedEvent[] = []
  try {
    for await (const resolved of client.readStream(streamName, {
      direction: plan.direction,
      fromRevision: plan.fromRevision,
      maxCount: plan.maxCount,
    })) {
      if (resolved.event !== undefined) out.push(resolved.event)
    }
    return E.right(out)
  } catch (error) {
    if (error instanceof StreamNotFoundError) return E.right([])
    return E.left(toStoreError(error, operation))
  }
}

/** The last recorded event of a stream, or null when the stream does not exist. */
export const readLast = async (
  client: EventStoreDBClient,
  streamName: string,
  operation: Operation,
): Promise<E.Either<StoreError, RecordedEvent | null>> => {
  const r = await readRecorded(
    client,
    streamName,
    { direction: BACKWARDS, fromRevision: END, maxCount: 1 },
    operation,
  )
  return E.map((events: RecordedEvent[]) => events[0] ?? null)(r)
}

/** Commit position of the newest event in `$all` (any stream), or 0n for an empty database. */
export const headOfAll = async (
  client: EventStoreDBClient,
  operation: Operation,
): Promise<E.Either<StoreError, GlobalPosition>> => {
  try {
    for await (const resolved of client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 })) {
      const position = resolved.event?.position ?? undefined
      if (position !== undefined) return E.right(position.commit)
    }
    return E.right(0n)
  } catch (error) {
    return E.left(toStoreError(error, operation))
  }
}

/**
 * The server-side filter for the engine's streams: the given stream-name prefixes, or, without
 * prefixes, every stream that is not a system stream (`$…`).
 */
export const engineStreamFilter = (prefixes: readonly string[] | undefined): Filter =>
  prefixes === undefined
    ? streamNameFilter({ regex: '^[^$]' })
    : streamNameFilter({ prefixes: [...prefixes] })

export interface FilteredReadOptions {
  readonly after: GlobalPosition
  readonly maxCount: number
  readonly prefixes: readonly string[] | undefined
  /** Reading stops once it has seen this position (the head of `$all` when the read began). */
  readonly until: GlobalPosition
  /** Gives up (StoreUnavailable, timeout) when the server sends nothing for this long. */
  readonly idleTimeoutMs: number
  /** `'last'` keeps only the newest matching event (a scan that needs no history in memory). */
  readonly keep?: 'all' | 'last'
}

/**
 * `$all` strictly after `after`, filtered on the server by stream name, in commit-position order.
 *
 * The client's `readAll` takes no filter, so this opens a filtered catch-up subscription from
 * `after` (subscriptions start exclusively after the given position) and ends it when any of these
 * shows that every event up to `until` has been delivered: an event at or past `until`, a filter
 * checkpoint at or past `until` (the server sends one when its catch-up read reaches the end of
 * `$all`), or the server's "caught up" signal (EventStoreDB 23.10+). Events already buffered by the
 * client stream are drained before the read ends.
 */
export const readAllFiltered = (
  client: EventStoreDBClient,
  options: FilteredReadOptions,
): Promise<E.Either<StoreError, StoredEvent[]>> => {
  const { after, maxCount, prefixes, until } = options
  if (maxCount <= 0 || until <= after) return Promise.resolve(E.right([]))
  return new Promise((resolve) => {
    const out: StoredEvent[] = []
    let done = false
    let timer: NodeJS.Timeout | undefined
    let subscription: AllStreamSubscription | undefined
    const finish = (result: E.Either<StoreError, StoredEvent[]>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      void subscription?.unsubscribe().catch(() => undefined)
      resolve(result)
    }
    // Let events the client stream has buffered reach the 'data' listener first.
    const finishAfterDrain = () => setImmediate(() => finish(E.right(out)))
    const armIdleTimer = () => {
      clearTimeout(timer)
      timer = setTimeout(
        () =>
          finish(
            E.left({
              _tag: 'StoreUnavailable',
              reason: 'timeout',
              message: `EventStoreDB read all failed: no progress for ${options.idleTimeoutMs} ms`,
            }),
          ),
        options.idleTimeoutMs,
      )
    }
    try {
      subscription = client.subscribeToAll({
        fromPosition: toAllPosition(after),
        filter: {
          ...engineStreamFilter(prefixes),
          checkpointInterval: 1,
          checkpointReached: (_subscription, position) => {
            armIdleTimer()
            if (position.commit >= until) finishAfterDrain()
          },
        },
      })
    } catch (error) {
      return finish(E.left(toStoreError(error, 'read all')))
    }
    subscription.on('data', (resolved: AllStreamResolvedEvent) => {
      if (done) return
      armIdleTimer()
      const recorded = resolved.event
      if (recorded === undefined) return
      const commit = recorded.position.commit
      if (commit > after && matchesPrefixes(recorded.streamId, prefixes)) {
        const mapped = fromRecordedEvent(recorded)
        if (E.isLeft(mapped)) return finish(mapped)
        if (options.keep === 'last') out.splice(0, out.length, mapped.right)
        else out.push(mapped.right)
        if (out.length >= maxCount) return finish(E.right(out))
      }
      if (commit >= until) finish(E.right(out))
    })
    subscription.on('caughtUp', finishAfterDrain)
    subscription.on('error', (error: unknown) => finish(E.left(toStoreError(error, 'read all'))))
    armIdleTimer()
  })
}
