import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import { StreamId } from '../shared/ids.js'
import { type Clock, type Instant, instantFromMillis } from '../shared/time.js'
import { checkRequestShape, describeExpected, expectedVersionHolds } from './append-rules.js'
import {
  type AppendManyOptions,
  type AppendRequest,
  type AppendResult,
  type CheckpointStore,
  type EventStore,
  type GlobalPosition,
  type ReadAllOptions,
  type ReadStreamOptions,
  refusedCompanion,
  type StoredEvent,
  type StoreError,
  type SubscribeOptions,
  type Subscription,
} from './port.js'

/**
 * The companion write the in-memory store takes (`CompanionWrite` of kind `in-memory`): `apply` runs
 * synchronously right after the append's events are stored, so nothing observes one without the
 * other. It must not throw.
 */
export interface InMemoryCompanionWrite {
  readonly kind: typeof IN_MEMORY_COMPANION
  readonly apply: () => void
}
export const IN_MEMORY_COMPANION = 'in-memory'

export interface InMemoryEventStoreOptions {
  /**
   * Stamps `recordedAt`. Defaults to a logical clock (1970-01-01T00:00:00.000Z plus one millisecond
   * per appended event), so a simulation replays identically on every machine.
   */
  readonly clock?: Clock
  readonly checkpoints?: CheckpointStore
}

export interface InMemoryEventStore extends EventStore {
  /** Every stored event in global order (a copy), for tests, simulations and tamper experiments. */
  readonly snapshot: () => readonly StoredEvent[]
}

const matchesPrefixes = (streamId: string, prefixes: readonly string[] | undefined): boolean =>
  prefixes === undefined || prefixes.some((p) => streamId.startsWith(p))

const right =
  <A>(a: A): TaskEither<StoreError, A> =>
  () =>
    Promise.resolve(E.right(a))

/**
 * The in-memory event store: for embedding, tests and simulation. Appends are synchronous inside
 * the returned task, so the expected-version check and the write cannot interleave with another
 * append; this is what makes it a faithful model of the store contract.
 */
export const createInMemoryEventStore = (options: InMemoryEventStoreOptions = {}): InMemoryEventStore => {
  const log: StoredEvent[] = []
  const streams = new Map<string, StoredEvent[]>()
  const byId = new Map<string, StoredEvent>()
  const waiters = new Set<() => void>()
  const checkpoints = options.checkpoints ?? createInMemoryCheckpointStore()
  let logicalMillis = 0
  let closed = false

  const now = (): Instant => options.clock?.now() ?? instantFromMillis(logicalMillis++)

  /** Validates one request against current state; returns either a no-op result, or null to write. */
  const check = (request: AppendRequest): E.Either<StoreError, AppendResult | null> => {
    const shape = checkRequestShape(request, StreamId.is)
    if (E.isLeft(shape)) return shape
    const stream = streams.get(request.streamId) ?? []
    const stored = request.events.map((e) => byId.get(e.id))
    if (stored.every((s) => s !== undefined && s.streamId === request.streamId)) {
      const last = stored[stored.length - 1] as StoredEvent
      return E.right({ streamId: request.streamId, version: last.version, position: last.globalPosition })
    }
    if (stored.some((s) => s !== undefined)) {
      return E.left({
        _tag: 'IdempotencyMismatch',
        streamId: request.streamId,
        message: `some but not all event ids of this append to ${request.streamId} are already stored`,
      })
    }
    if (!expectedVersionHolds(request.expected, stream.length)) {
      return E.left({
        _tag: 'WrongExpectedVersion',
        streamId: request.streamId,
        expected: request.expected,
        actual: stream.length,
        message: `expected ${describeExpected(request.expected)} for ${request.streamId}, actual version ${stream.length}`,
      })
    }
    return E.right(null)
  }

  const write = (request: AppendRequest): AppendResult => {
    const stream = streams.get(request.streamId) ?? []
    streams.set(request.streamId, stream)
    const recordedAt = now()
    for (const e of request.events) {
      const stored: StoredEvent = {
        ...e,
        streamId: request.streamId,
        version: stream.length + 1,
        globalPosition: BigInt(log.length + 1),
        recordedAt,
      }
      stream.push(stored)
      log.push(stored)
      byId.set(e.id, stored)
    }
    const last = stream[stream.length - 1] as StoredEvent
    return { streamId: request.streamId, version: last.version, position: last.globalPosition }
  }

  const notify = () => {
    for (const w of [...waiters]) w()
  }

  const appendMany =
    (
      requests: readonly AppendRequest[],
      options: AppendManyOptions = {},
    ): TaskEither<StoreError, readonly AppendResult[]> =>
    async () => {
      if (closed)
        return E.left({ _tag: 'StoreUnavailable', reason: 'unavailable', message: 'store is closed' })
      const refused = refusedCompanion(options.companions, [IN_MEMORY_COMPANION])
      if (refused !== undefined) return E.left(refused)
      const streamIds = new Set(requests.map((r) => r.streamId))
      if (streamIds.size !== requests.length) {
        return E.left({ _tag: 'InvalidAppend', message: 'appendMany takes at most one request per stream' })
      }
      const checks: (AppendResult | null)[] = []
      for (const r of requests) {
        const c = check(r)
        if (E.isLeft(c)) return c
        checks.push(c.right)
      }
      const results = requests.map((r, i) => checks[i] ?? write(r))
      for (const c of options.companions ?? []) (c as InMemoryCompanionWrite).apply()
      if (checks.some((c) => c === null)) notify()
      return E.right(results)
    }

  const readStream = (
    streamId: StreamId,
    opts: ReadStreamOptions = {},
  ): TaskEither<StoreError, readonly StoredEvent[]> => {
    const stream = streams.get(streamId) ?? []
    const max = opts.maxCount ?? Number.POSITIVE_INFINITY
    if (opts.direction === 'backward') {
      const from = opts.fromVersion ?? stream.length
      return right(
        stream
          .filter((e) => e.version <= from)
          .reverse()
          .slice(0, max),
      )
    }
    const from = opts.fromVersion ?? 1
    return right(stream.filter((e) => e.version >= from).slice(0, max))
  }

  const readAll = (opts: ReadAllOptions = {}): TaskEither<StoreError, readonly StoredEvent[]> => {
    const after = opts.after ?? 0n
    const max = opts.maxCount ?? Number.POSITIVE_INFINITY
    const out: StoredEvent[] = []
    for (let i = Number(after); i < log.length && out.length < max; i++) {
      const e = log[i] as StoredEvent
      if (matchesPrefixes(e.streamId, opts.streamPrefixes)) out.push(e)
    }
    return right(out)
  }

  const subscribe = (so: SubscribeOptions): Subscription => {
    let stopped = false
    let position: GlobalPosition = 0n
    let idle: (() => void)[] = []
    let wake: (() => void) | null = null
    /** Resolves on the next append or on `stop`/`caughtUp` nudges. */
    const idleWait = (): Promise<void> =>
      new Promise((resolve) => {
        const w = () => {
          waiters.delete(w)
          wake = null
          resolve()
        }
        waiters.add(w)
        wake = w
        // An append between the empty read and this registration would otherwise go unnoticed.
        if (BigInt(log.length) > position) w()
      })
    const settleIdle = () => {
      const waiting = idle
      idle = []
      for (const r of waiting) r()
    }
    const loop = async () => {
      const loaded = await checkpoints.load(so.subscriptionId)
      let saved = loaded
      position = loaded ?? 0n
      while (!stopped) {
        // Read unfiltered and filter here, so the position moves past every event seen, matching or
        // not, and never past one that was not seen (an append may land during any await).
        const batch = await readAll({ after: position, maxCount: so.batchSize ?? 100 })()
        if (E.isLeft(batch)) throw new Error(batch.left.message)
        for (const event of batch.right) {
          if (stopped) return
          if (matchesPrefixes(event.streamId, so.streamPrefixes)) {
            await so.handler(event)
            if (!(await checkpoints.save(so.subscriptionId, saved, event.globalPosition))) {
              throw new Error(`checkpoint of subscription ${so.subscriptionId} was moved by another worker`)
            }
            saved = event.globalPosition
          }
          position = event.globalPosition
        }
        if (batch.right.length === 0) {
          settleIdle()
          await idleWait()
        }
      }
    }
    const running = loop().catch((error: unknown) => {
      stopped = true
      settleIdle()
      so.onError?.(error)
    })
    return {
      caughtUp: () =>
        stopped
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              const target = BigInt(log.length)
              const poll = () => (position >= target || stopped ? resolve() : idle.push(poll))
              idle.push(poll)
              wake?.()
            }),
      stop: async () => {
        stopped = true
        wake?.()
        settleIdle()
        await running
      },
    }
  }

  return {
    append: (request) => async () => {
      const r = await appendMany([request])()
      return E.isLeft(r) ? r : E.right(r.right[0] as AppendResult)
    },
    appendMany,
    readStream,
    readAll,
    streamVersion: (streamId) => right(streams.get(streamId)?.length ?? 0),
    subscribe,
    capabilities: { atomicMultiStreamAppend: true, companionKinds: [IN_MEMORY_COMPANION] },
    close: async () => {
      closed = true
      notify()
    },
    snapshot: () => [...log],
  }
}

/** Checkpoints in memory, with the same compare-and-swap semantics as the persistent ones. */
export const createInMemoryCheckpointStore = (): CheckpointStore => {
  const positions = new Map<string, GlobalPosition>()
  return {
    load: async (id) => positions.get(id) ?? null,
    save: async (id, previous, next) => {
      if ((positions.get(id) ?? null) !== previous) return false
      positions.set(id, next)
      return true
    },
  }
}
