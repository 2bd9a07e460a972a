import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import { StreamId } from '../shared/ids.js'
import { checkRequestShape, describeExpected, expectedVersionHolds } from '../store/append-rules.js'
import type {
  AppendManyOptions,
  AppendRequest,
  AppendResult,
  EventStore,
  ExpectedVersion,
  NewEvent,
  StoreError,
} from '../store/port.js'
import { expected as expectedVersion } from '../store/port.js'
import { CanonicalJsonError } from './canonical-json.js'
import { eventHash, GENESIS_HASH, type Hasher, integrityOf, withIntegrity } from './chain.js'

export interface HashChainOptions {
  /** How often an append with `expected: any` (or `stream_exists`) is retried after losing a race. */
  readonly maxRetries?: number
  /** How many stream heads are remembered from reads and appends (default 10,000; 0 disables). */
  readonly headCacheSize?: number
}

interface Head {
  readonly version: number
  readonly hash: string
}

type Prepared =
  /** The caller's expectation holds at `head`: append exactly after it, with these chained events. */
  | { readonly kind: 'write'; readonly request: AppendRequest; readonly retryable: boolean }
  /** Every event id is already stored: the inner store answers the idempotent no-op itself. */
  | { readonly kind: 'replay'; readonly request: AppendRequest }

const wrongVersion = (streamId: StreamId, expected: ExpectedVersion, actual: number): StoreError => ({
  _tag: 'WrongExpectedVersion',
  streamId,
  expected,
  actual,
  message: `wrong expected version for stream ${streamId}: expected ${describeExpected(expected)}, actual ${actual}`,
})

/**
 * A store decorator that hash-chains every stream (SPEC §3 "Tamper evidence"). Before an append it
 * reads the stream's head (last version and hash), computes `integrity = { prev, hash }` for each
 * new event at the version it will get, and appends with `exact(head)` so no concurrent writer
 * can slip an event between the head it read and the events it chained.
 *
 * The caller's expected version keeps its meaning: it is checked against the head that was read;
 * if another writer wins the race, `exact`/`no_stream` callers get the conflict (their
 * expectation no longer holds), while `any`/`stream_exists` callers are retried internally, up to
 * `maxRetries` times. Idempotency on event ids is preserved: a request whose ids are all stored is
 * passed to the inner store, which writes nothing and reports the stored result.
 *
 * Reads pass through unchanged: verification is `verifyStore`'s job. The head of a stream this
 * store just read to its end (a forward read without `maxCount`) or appended to is remembered, so
 * the append that usually follows (load, decide, append) needs no read of its own; a new stream
 * (`no_stream`) needs none either. A remembered head is only a hint: the append is made with
 * `exact(head)`, so if another writer moved the stream on, the inner store refuses it and the
 * append is prepared again from a real read (the caller sees nothing of it).
 */
export const hashChainedStore = (
  inner: EventStore,
  hasher: Hasher,
  options: HashChainOptions = {},
): EventStore => {
  const maxRetries = options.maxRetries ?? 100
  const headCacheSize = options.headCacheSize ?? 10_000
  /** Stream heads seen in reads and appends (insertion order = age, for eviction). */
  const heads = new Map<StreamId, Head>()
  const remember = (streamId: StreamId, head: Head) => {
    if (headCacheSize === 0) return
    heads.delete(streamId)
    heads.set(streamId, head)
    if (heads.size > headCacheSize) {
      const oldest = heads.keys().next()
      if (oldest.done !== true) heads.delete(oldest.value)
    }
  }

  const readStream: EventStore['readStream'] = (streamId, readOptions) => async () => {
    const read = await inner.readStream(streamId, readOptions)()
    if (
      E.isRight(read) &&
      (readOptions?.direction ?? 'forward') === 'forward' &&
      readOptions?.maxCount === undefined
    ) {
      const last = read.right[read.right.length - 1]
      const integrity = last === undefined ? undefined : integrityOf(last.metadata)
      if (last !== undefined && integrity !== undefined)
        remember(streamId, { version: last.version, hash: integrity.hash })
    }
    return read
  }

  const readHead = async (streamId: StreamId): Promise<E.Either<StoreError, Head>> => {
    const last = await inner.readStream(streamId, { direction: 'backward', maxCount: 1 })()
    if (E.isLeft(last)) return last
    const event = last.right[0]
    if (event === undefined) return E.right({ version: 0, hash: GENESIS_HASH })
    const integrity = integrityOf(event.metadata)
    if (integrity === undefined) {
      return E.left({
        _tag: 'InvalidAppend',
        message: `stream ${streamId} has an event without an integrity field at version ${event.version}: it cannot be extended by a hash-chained store`,
      })
    }
    return E.right({ version: event.version, hash: integrity.hash })
  }

  /** Which of the request's event ids are already stored in its stream (read only on a conflict). */
  const storedIdCount = async (request: AppendRequest): Promise<E.Either<StoreError, number>> => {
    const events = await inner.readStream(request.streamId)()
    if (E.isLeft(events)) return events
    const stored = new Set<string>(events.right.map((e) => e.id))
    return E.right(request.events.filter((e) => stored.has(e.id)).length)
  }

  const chain = (request: AppendRequest, head: Head): E.Either<StoreError, readonly NewEvent[]> => {
    const chained: NewEvent[] = []
    let prev = head.hash
    try {
      request.events.forEach((event, index) => {
        const version = head.version + index + 1
        const hash = eventHash(hasher, prev, { ...event, streamId: request.streamId, version })
        chained.push({ ...event, metadata: withIntegrity(event.metadata, { prev, hash }) })
        prev = hash
      })
    } catch (error) {
      if (error instanceof CanonicalJsonError) {
        return E.left({ _tag: 'InvalidAppend', message: `event data or metadata ${error.message}` })
      }
      throw error
    }
    return E.right(chained)
  }

  const writeOf = (request: AppendRequest, head: Head, events: readonly NewEvent[]): Prepared => ({
    kind: 'write',
    request: {
      streamId: request.streamId,
      expected: head.version === 0 ? expectedVersion.noStream : expectedVersion.exact(head.version),
      events,
    },
    retryable: request.expected.kind === 'any' || request.expected.kind === 'stream_exists',
  })

  /** Checks the caller's expectation against the stream's head and chains the new events after it. */
  const prepare = async (
    request: AppendRequest,
    useHints: boolean,
  ): Promise<E.Either<StoreError, Prepared & { readonly hinted?: true }>> => {
    const shape = checkRequestShape(request, StreamId.is)
    if (E.isLeft(shape)) return shape
    const hint = useHints
      ? request.expected.kind === 'no_stream'
        ? { version: 0, hash: GENESIS_HASH }
        : heads.get(request.streamId)
      : undefined
    if (hint !== undefined && expectedVersionHolds(request.expected, hint.version)) {
      const events = chain(request, hint)
      if (E.isLeft(events)) return events
      return E.right({ ...writeOf(request, hint, events.right), hinted: true })
    }
    const read = await readHead(request.streamId)
    if (E.isLeft(read)) return read
    const head = read.right
    if (!expectedVersionHolds(request.expected, head.version)) {
      const stored = await storedIdCount(request)
      if (E.isLeft(stored)) return stored
      if (stored.right === request.events.length) {
        return E.right({ kind: 'replay', request })
      }
      if (stored.right > 0) {
        return E.left({
          _tag: 'IdempotencyMismatch',
          streamId: request.streamId,
          message: `some but not all event ids of the append to stream ${request.streamId} are already stored`,
        })
      }
      return E.left(wrongVersion(request.streamId, request.expected, head.version))
    }
    const events = chain(request, head)
    if (E.isLeft(events)) return events
    return E.right(writeOf(request, head, events.right))
  }

  const appendMany = async (
    requests: readonly AppendRequest[],
    options?: AppendManyOptions,
  ): Promise<E.Either<StoreError, readonly AppendResult[]>> => {
    // Companions need the inner store's appendMany (its transaction), even for one request.
    const companions = (options?.companions?.length ?? 0) > 0
    let useHints = true
    for (let attempt = 0; ; attempt++) {
      const prepared: (Prepared & { readonly hinted?: true })[] = []
      for (const request of requests) {
        const one = await prepare(request, useHints)
        if (E.isLeft(one)) return one
        prepared.push(one.right)
      }
      const result =
        prepared.length === 1 && prepared[0] !== undefined && !companions
          ? await inner
              .append(prepared[0].request)()
              .then(E.map((r): readonly AppendResult[] => [r]))
          : await inner.appendMany(
              prepared.map((p) => p.request),
              options,
            )()
      if (E.isRight(result)) {
        for (const p of prepared) {
          const last = p.kind === 'write' ? p.request.events[p.request.events.length - 1] : undefined
          const integrity = last === undefined ? undefined : integrityOf(last.metadata)
          const written = result.right.find((r) => r.streamId === p.request.streamId)
          const from = p.request.expected.kind === 'exact' ? p.request.expected.version : 0
          // Only a write that landed where it was chained (not an idempotent no-op elsewhere).
          if (
            integrity !== undefined &&
            written !== undefined &&
            written.version === from + p.request.events.length
          )
            remember(p.request.streamId, { version: written.version, hash: integrity.hash })
        }
        return result
      }
      if (result.left._tag !== 'WrongExpectedVersion') return result
      const conflict = result.left
      heads.delete(conflict.streamId)
      // A remembered head was stale: prepare again from real reads (not one of the caller's retries).
      if (prepared.some((p) => p.hinted === true && p.request.streamId === conflict.streamId)) {
        useHints = false
        attempt--
        continue
      }
      const conflicting = prepared.filter((p) => p.request.streamId === conflict.streamId)
      const retryable = conflicting.length > 0 && conflicting.every((p) => p.kind === 'write' && p.retryable)
      if (!retryable || attempt >= maxRetries) {
        const original = requests.find((r) => r.streamId === conflict.streamId)
        return E.left(
          wrongVersion(conflict.streamId, original?.expected ?? conflict.expected, conflict.actual),
        )
      }
    }
  }

  return {
    append:
      (request: AppendRequest): TaskEither<StoreError, AppendResult> =>
      async () => {
        const results = await appendMany([request])
        if (E.isLeft(results)) return results
        const only = results.right[0]
        return only === undefined
          ? E.left({ _tag: 'InvalidAppend', message: 'the store returned no append result' })
          : E.right(only)
      },
    appendMany: (requests, options) => () => appendMany(requests, options),
    readStream,
    readAll: inner.readAll,
    streamVersion: inner.streamVersion,
    subscribe: inner.subscribe,
    capabilities: inner.capabilities,
    close: inner.close,
  }
}
