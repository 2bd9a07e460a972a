import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import type { StreamId } from '../shared/ids.js'
import type { EventStore, GlobalPosition, StoredEvent, StoreError } from '../store/port.js'
import { CanonicalJsonError, canonicalJson } from './canonical-json.js'
import { eventHash, GENESIS_HASH, type Hasher, integrityOf } from './chain.js'

/**
 * - `altered`: an event's content no longer matches its hash, or it does not chain to the
 *   previous event of its stream, or a stream's head differs from an auditor's checkpoint.
 * - `removed`: events are missing inside a stream (a version gap that is never filled).
 * - `reordered`: an event comes before an earlier version of its own stream, or global positions
 *   go backwards.
 * - `inserted`: an event claims a version its stream already has.
 * - `truncated`: a stream ends before the version an auditor's checkpoint recorded.
 */
export type ChainProblemKind = 'altered' | 'removed' | 'reordered' | 'inserted' | 'truncated'

export interface ChainProblem {
  readonly kind: ChainProblemKind
  readonly streamId: StreamId
  /**
   * The version the offending event claims; for `removed`/`truncated`, the first missing version.
   */
  readonly version: number
  /** Where the problem shows in global order; `null` when it shows only at the end (`truncated`). */
  readonly globalPosition: GlobalPosition | null
  /** Safe to log: names streams, versions and positions, never event data. */
  readonly message: string
}

/** A stream's verified head, as an auditor records it to detect later truncation or rewriting. */
export interface StreamHead {
  readonly streamId: StreamId
  readonly version: number
  readonly hash: string
}

export type VerificationReport =
  | {
      readonly ok: true
      readonly eventsChecked: number
      /** Every stream's head, in stream-id order: the checkpoint for the next verification. */
      readonly heads: readonly StreamHead[]
      /** SHA-256 over every stream's head in stream-id order: one value an auditor can record. */
      readonly summaryHash: string
    }
  | { readonly ok: false; readonly eventsChecked: number; readonly problem: ChainProblem }

export interface VerifyOptions {
  /**
   * Heads recorded by an earlier verification. Each stream must still reach its recorded version
   * with the recorded hash there; otherwise its tail was cut (`truncated`) or rewritten (`altered`).
   */
  readonly checkpoint?: readonly StreamHead[]
}

const compareCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** The summary hash of a set of stream heads (sorted here, so any order may be passed). */
export const summaryHashOf = (hasher: Hasher, heads: readonly StreamHead[]): string =>
  hasher.sha256Hex(
    canonicalJson({
      chain: 'referrals-store-summary-v1',
      heads: [...heads]
        .sort((a, b) => compareCodeUnits(a.streamId, b.streamId))
        .map((h) => [h.streamId, h.version, h.hash]),
    }),
  )

interface Pending {
  readonly problem: ChainProblem
  /** The problem is really a reordering if this version of the stream turns up later. */
  readonly missingFrom: number
  readonly missingTo: number
}

const problem = (
  kind: ChainProblemKind,
  event: { readonly streamId: StreamId; readonly globalPosition: GlobalPosition | null },
  version: number,
  detail: string,
): ChainProblem => ({
  kind,
  streamId: event.streamId,
  version,
  globalPosition: event.globalPosition,
  message: `${kind}: stream ${event.streamId} version ${version}${
    event.globalPosition === null ? '' : ` at global position ${event.globalPosition}`
  }: ${detail}`,
})

/**
 * Replays a store's events in global order and checks every stream's hash chain, reporting the
 * FIRST problem found. Memory holds one head (version and hash) per stream, whatever the number
 * of events. A gap in a stream is classified by reading on: if the missing version turns up later
 * the gap was a reordering, otherwise events were removed.
 *
 * Limits, by construction of an unkeyed per-stream chain: a forger who recomputes every hash of a
 * stream from some point to its end, or who appends well-formed events to a stream's end, is caught
 * only by comparing heads with an earlier `checkpoint` (or the recorded `summaryHash`); the order
 * of events of different streams is not chained.
 */
export const verifyStore = async (
  events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>,
  hasher: Hasher,
  options: VerifyOptions = {},
): Promise<VerificationReport> => {
  const heads = new Map<StreamId, { version: number; hash: string }>()
  const checkpoint = new Map<StreamId, StreamHead>((options.checkpoint ?? []).map((h) => [h.streamId, h]))
  let pending: Pending | undefined
  let lastPosition: GlobalPosition | undefined
  let eventsChecked = 0

  for await (const event of events) {
    if (pending !== undefined) {
      const p = pending
      if (
        event.streamId === p.problem.streamId &&
        event.version >= p.missingFrom &&
        event.version <= p.missingTo
      ) {
        return {
          ok: false,
          eventsChecked,
          problem: {
            ...p.problem,
            kind: 'reordered',
            message: p.problem.message.replace(/^removed: /, 'reordered: ') + ' (it appears later)',
          },
        }
      }
      continue
    }
    eventsChecked++
    if (lastPosition !== undefined && event.globalPosition <= lastPosition) {
      return {
        ok: false,
        eventsChecked,
        problem: problem('reordered', event, event.version, 'global position does not increase'),
      }
    }
    lastPosition = event.globalPosition

    const head = heads.get(event.streamId) ?? { version: 0, hash: GENESIS_HASH }
    const integrity = integrityOf(event.metadata)
    if (integrity === undefined) {
      return {
        ok: false,
        eventsChecked,
        problem: problem('altered', event, event.version, 'integrity field missing or malformed'),
      }
    }
    let recomputed: string
    try {
      recomputed = eventHash(hasher, integrity.prev, event)
    } catch (error) {
      if (!(error instanceof CanonicalJsonError)) throw error
      return {
        ok: false,
        eventsChecked,
        problem: problem('altered', event, event.version, 'content is not JSON'),
      }
    }
    if (recomputed !== integrity.hash) {
      return {
        ok: false,
        eventsChecked,
        problem: problem('altered', event, event.version, 'content does not match its hash'),
      }
    }
    if (event.version <= head.version) {
      return {
        ok: false,
        eventsChecked,
        problem: problem('inserted', event, event.version, `the stream already has version ${event.version}`),
      }
    }
    if (event.version > head.version + 1) {
      pending = {
        problem: problem(
          'removed',
          event,
          head.version + 1,
          `versions ${head.version + 1}..${event.version - 1} are missing before this event`,
        ),
        missingFrom: head.version + 1,
        missingTo: event.version - 1,
      }
      continue
    }
    if (integrity.prev !== head.hash) {
      return {
        ok: false,
        eventsChecked,
        problem: problem(
          'altered',
          event,
          event.version,
          'does not chain to the previous event of its stream',
        ),
      }
    }
    const recorded = checkpoint.get(event.streamId)
    if (recorded !== undefined && recorded.version === event.version && recorded.hash !== integrity.hash) {
      return {
        ok: false,
        eventsChecked,
        problem: problem('altered', event, event.version, 'differs from the checkpointed head'),
      }
    }
    heads.set(event.streamId, { version: event.version, hash: integrity.hash })
  }

  if (pending !== undefined) return { ok: false, eventsChecked, problem: pending.problem }

  const recordedStreams = [...checkpoint.values()].sort((a, b) => compareCodeUnits(a.streamId, b.streamId))
  for (const recorded of recordedStreams) {
    const version = heads.get(recorded.streamId)?.version ?? 0
    if (version < recorded.version) {
      return {
        ok: false,
        eventsChecked,
        problem: problem(
          'truncated',
          { streamId: recorded.streamId, globalPosition: null },
          version + 1,
          `the stream ends at version ${version}, the checkpoint recorded ${recorded.version}`,
        ),
      }
    }
  }

  const finalHeads: StreamHead[] = [...heads.entries()]
    .map(([streamId, h]) => ({ streamId, version: h.version, hash: h.hash }))
    .sort((a, b) => compareCodeUnits(a.streamId, b.streamId))
  return { ok: true, eventsChecked, heads: finalHeads, summaryHash: summaryHashOf(hasher, finalHeads) }
}

/** Every event of a store in global order, read page by page (for `verifyStore`). */
export async function* readAllEvents(
  store: EventStore,
  options: { readonly pageSize?: number } = {},
): AsyncGenerator<StoredEvent> {
  const pageSize = options.pageSize ?? 500
  let after: GlobalPosition = 0n
  for (;;) {
    const page = await store.readAll({ after, maxCount: pageSize })()
    if (E.isLeft(page)) throw new StoreReadError(page.left)
    for (const event of page.right) yield event
    const last = page.right[page.right.length - 1]
    if (last === undefined || page.right.length < pageSize) return
    after = last.globalPosition
  }
}

/** A store failure while reading for verification. Carries the store's typed error. */
export class StoreReadError extends Error {
  override readonly name = 'StoreReadError'
  constructor(readonly error: StoreError) {
    super(`reading the store failed: ${error.message}`)
  }
}

/** `verifyStore` over a whole `EventStore`, with store failures as a typed error. */
export const verifyEventStore =
  (
    store: EventStore,
    hasher: Hasher,
    options: VerifyOptions & { readonly pageSize?: number } = {},
  ): TaskEither<StoreError, VerificationReport> =>
  async () => {
    try {
      return E.right(await verifyStore(readAllEvents(store, options), hasher, options))
    } catch (error) {
      if (error instanceof StoreReadError) return E.left(error.error)
      throw error
    }
  }
