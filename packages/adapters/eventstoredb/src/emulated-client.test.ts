/**
 * The adapter's own logic — read-back after writes, conflict vs idempotent repeat, filtered `$all`
 * reads, catch-up subscriptions, checkpoint compare-and-swap — exercised against an in-process
 * emulation of the parts of `EventStoreDBClient` the adapter calls. This is not a server and not a
 * substitute for the live conformance run (`conformance.test.ts`); it encodes EventStoreDB's
 * documented semantics so the adapter's code paths run everywhere:
 *
 * - appends check the expected revision and recognise repeats the way the server does (same
 *   expected revision as the original write; `ANY` via an id cache), answering a partly repeated
 *   batch with WrongExpectedVersion; the response position is the write's first event's;
 * - every write is followed by a system event (`$stats-…`), so the head of `$all` is never an
 *   engine event, and positions grow by uneven steps;
 * - subscriptions emit "caughtUp" synchronously before the buffered events reach 'data' listeners,
 *   the least convenient order the client allows.
 */
import { Readable } from 'node:stream'
import {
  type AllStreamResolvedEvent,
  ANY,
  type AppendExpectedRevision,
  type AppendResult,
  BACKWARDS,
  END,
  type EventData,
  type EventStoreDBClient,
  NO_STREAM,
  type Position,
  type ReadRevision,
  type RecordedEvent,
  START,
  STREAM_EXISTS,
  StreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client'
import {
  type CheckpointStore,
  type EventId,
  type EventMetadata,
  type EventStore,
  expected,
  type NewEvent,
  type StreamId,
  unsafeId,
} from '@referrals/core'
import { describeEventStoreConformance } from '@referrals/core/testing'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it, vi } from 'vitest'
import { createEventStoreDbCheckpointStore } from './checkpoints.js'
import { createEventStoreDbEventStore } from './event-store.js'
import { createTwoStreamWriter, followUpEventId } from './process-manager.js'

interface Entry {
  readonly streamId: string
  readonly id: string
  readonly revision: bigint
  readonly type: string
  readonly data: string
  readonly metadata: string
  readonly created: Date
  readonly position: Position
}

interface Filter {
  readonly prefixes?: readonly string[]
  readonly regex?: string
  readonly checkpointReached?: (subscription: unknown, position: Position) => unknown
}

const toRecorded = (e: Entry): RecordedEvent & { position: Position } =>
  ({
    streamId: e.streamId,
    id: e.id,
    revision: e.revision,
    type: e.type,
    data: JSON.parse(e.data),
    metadata: JSON.parse(e.metadata),
    isJson: true,
    created: e.created,
    position: e.position,
  }) as RecordedEvent & { position: Position }

const passes = (filter: Filter | undefined, streamId: string) =>
  filter === undefined ||
  (filter.prefixes?.some((p) => streamId.startsWith(p)) ?? new RegExp(filter.regex ?? '').test(streamId))

const emulatedClient = (
  options: {
    readonly throwOnAppendFailure?: boolean
    readonly dropFirstSubscriptionWith?: Error
    /**
     * How the end of catch-up is announced: the "caught up" message (23.10+, default) or only the
     * filter checkpoint the server sends when its catch-up read reaches the end of `$all`.
     */
    readonly endOfCatchUp?: 'caughtUp' | 'checkpoint'
  } = {},
) => {
  const log: Entry[] = []
  const streams = new Map<string, Entry[]>()
  const live = new Set<(e: Entry) => void>()
  let offset = 0n
  let clock = Date.UTC(2026, 0, 1)
  let dropNext = options.dropFirstSubscriptionWith
  const streamMetadata = new Map<string, Record<string, unknown>>()

  const write = (
    streamId: string,
    events: readonly { id: string; type: string; data: string; metadata: string }[],
  ) => {
    const stream = streams.get(streamId) ?? []
    streams.set(streamId, stream)
    const written: Entry[] = []
    for (const e of events) {
      offset += 97n + BigInt(e.data.length)
      const entry = {
        ...e,
        streamId,
        revision: BigInt(stream.length),
        created: new Date(clock++),
        position: { commit: offset, prepare: offset },
      }
      stream.push(entry)
      log.push(entry)
      written.push(entry)
    }
    for (const w of written) for (const l of live) l(w)
    return written
  }

  const wrongVersion = (streamName: string, expectedRevision: AppendExpectedRevision, current: bigint) => {
    const error = new WrongExpectedVersionError(undefined, {
      streamName,
      expected: expectedRevision,
      current: current < 0n ? NO_STREAM : current,
    })
    if (options.throwOnAppendFailure === false)
      return { success: false, nextExpectedRevision: current } as AppendResult
    throw error
  }

  /** The server's idempotency check: the batch is already at `from`, `from+1`, …? */
  const repeatAt = (
    stream: readonly Entry[],
    from: number,
    ids: readonly string[],
  ): 'all' | 'some' | 'none' => {
    const matches = ids.filter((id, i) => stream[from + i]?.id === id).length
    return matches === ids.length ? 'all' : stream[from]?.id === ids[0] ? 'some' : 'none'
  }

  const client = {
    appendToStream: async (
      streamName: string,
      input: EventData | EventData[],
      appendOptions: { expectedRevision?: AppendExpectedRevision } = {},
    ): Promise<AppendResult> => {
      await Promise.resolve()
      if (appendOptions.expectedRevision === undefined)
        throw new Error('the adapter must pass expectedRevision')
      const expectedRevision = appendOptions.expectedRevision
      const events = (Array.isArray(input) ? input : [input]).map((e) => ({
        id: e.id.toLowerCase(),
        type: e.type,
        data: JSON.stringify(e.data),
        metadata: JSON.stringify(e.metadata ?? {}),
      }))
      const ids = events.map((e) => e.id)
      const stream = streams.get(streamName) ?? []
      const current = BigInt(stream.length) - 1n
      const idempotent = (from: number): AppendResult => ({
        success: true,
        nextExpectedRevision: BigInt(from + ids.length - 1),
      })
      if (expectedRevision === ANY) {
        const first = stream.findIndex((e) => e.id === ids[0])
        if (first >= 0) {
          return repeatAt(stream, first, ids) === 'all'
            ? idempotent(first)
            : wrongVersion(streamName, ANY, current)
        }
      } else if (expectedRevision === STREAM_EXISTS) {
        if (stream.length === 0) return wrongVersion(streamName, STREAM_EXISTS, current)
      } else {
        const at = expectedRevision === NO_STREAM ? -1n : expectedRevision
        if (at !== current) {
          const repeat = at < current ? repeatAt(stream, Number(at) + 1, ids) : 'none'
          return repeat === 'all'
            ? idempotent(Number(at) + 1)
            : wrongVersion(streamName, expectedRevision, current)
        }
      }
      const written = write(streamName, events)
      write(`$stats-${written.length}`, [
        { id: crypto.randomUUID(), type: '$statsCollected', data: '{}', metadata: '{}' },
      ])
      const first = written[0] as Entry
      return {
        success: true,
        nextExpectedRevision: (written.at(-1) as Entry).revision,
        position: first.position,
      }
    },

    readStream: (
      streamName: string,
      readOptions: { direction?: string; fromRevision?: ReadRevision; maxCount?: number | bigint } = {},
    ) =>
      (async function* () {
        await Promise.resolve()
        const stream = streams.get(streamName)
        if (stream === undefined) throw new StreamNotFoundError(undefined, streamName)
        const max = Number(readOptions.maxCount ?? Number.MAX_SAFE_INTEGER)
        const from = readOptions.fromRevision ?? (readOptions.direction === BACKWARDS ? END : START)
        const backward = readOptions.direction === BACKWARDS
        const selected = backward
          ? stream.filter((e) => from === END || (from !== START && e.revision <= from)).reverse()
          : stream.filter((e) => from === START || (from !== END && e.revision >= from))
        for (const e of selected.slice(0, max)) yield { event: toRecorded(e) }
      })(),

    readAll: (readOptions: { direction?: string; fromPosition?: unknown; maxCount?: number | bigint } = {}) =>
      (async function* () {
        if (readOptions.direction !== BACKWARDS || readOptions.fromPosition !== END) {
          throw new Error('the adapter only reads the head of $all with readAll')
        }
        await Promise.resolve()
        for (const e of log.slice(-Number(readOptions.maxCount ?? 1)).reverse())
          yield { event: toRecorded(e) }
      })(),

    subscribeToAll: (subscribeOptions: { fromPosition?: Position | typeof START; filter?: Filter } = {}) => {
      const from = subscribeOptions.fromPosition
      const after = from === undefined || from === START ? -1n : from.commit
      const filter = subscribeOptions.filter
      const stream = new Readable({ objectMode: true, read: () => undefined })
      const push = (e: Entry) => {
        if (e.position.commit > after && passes(filter, e.streamId)) {
          stream.push({
            event: toRecorded(e),
            commitPosition: e.position.commit,
          } satisfies AllStreamResolvedEvent)
        }
      }
      queueMicrotask(() => {
        for (const e of log) push(e)
        const head = log.at(-1)
        if (options.endOfCatchUp === 'checkpoint') {
          if (head !== undefined) void filter?.checkpointReached?.(stream, head.position)
        } else stream.emit('caughtUp')
        if (dropNext !== undefined) stream.emit('error', dropNext)
        else live.add(push)
        dropNext = undefined
      })
      return Object.assign(stream, {
        unsubscribe: async () => {
          live.delete(push)
        },
      })
    },

    setStreamMetadata: async (streamName: string, metadata: Record<string, unknown>) => {
      streamMetadata.set(streamName, metadata)
      return { success: true, nextExpectedRevision: 0n }
    },
    dispose: async () => undefined,
  }
  return { client: client as unknown as EventStoreDBClient, log, streams, streamMetadata }
}

const metadata: EventMetadata = {
  actor: { kind: 'system', component: 'test' },
  correlationId: unsafeId('corr-1'),
  commandId: unsafeId('cmd-1'),
  occurredAt: unsafeId('2026-01-02T03:04:05.678Z'),
}
const event = (type = 'Happened'): NewEvent => ({
  id: unsafeId<EventId>(crypto.randomUUID()),
  type,
  schemaVersion: 1,
  data: { type },
  metadata,
})
const must = async <A>(task: () => Promise<E.Either<{ readonly message: string }, A>>): Promise<A> => {
  const r = await task()
  if (E.isLeft(r)) throw new Error(r.left.message)
  return r.right
}

describe('adapter over an emulated client', () => {
  describeEventStoreConformance('eventstoredb (emulated client)', async () =>
    createEventStoreDbEventStore({ client: emulatedClient().client }, { multiStreamAppend: 'sequential' }),
  )

  describeEventStoreConformance('eventstoredb (emulated client, end of catch-up by checkpoint)', async () =>
    createEventStoreDbEventStore(
      { client: emulatedClient({ endOfCatchUp: 'checkpoint' }).client },
      { multiStreamAppend: 'sequential' },
    ),
  )

  describeEventStoreConformance('eventstoredb (emulated client, throwOnAppendFailure=false)', async () =>
    createEventStoreDbEventStore(
      { client: emulatedClient({ throwOnAppendFailure: false }).client },
      { multiStreamAppend: 'sequential' },
    ),
  )

  it('reports the last event of a batch, not the position the server returns (the first)', async () => {
    const { client, streams } = emulatedClient()
    const store: EventStore = createEventStoreDbEventStore({ client })
    const s = unsafeId<StreamId>('referral-batch')
    const r = await must(
      store.append({ streamId: s, expected: expected.noStream, events: [event(), event(), event()] }),
    )
    const stored = streams.get(s) ?? []
    expect(r).toEqual({ streamId: s, version: 3, position: stored[2]?.position.commit })
    expect(r.position).not.toBe(stored[0]?.position.commit)
  })

  it('keeps an upper-case event id as given', async () => {
    const { client, streams } = emulatedClient()
    const store = createEventStoreDbEventStore({ client })
    const s = unsafeId<StreamId>('referral-case')
    const upper = { ...event(), id: unsafeId<EventId>('0F8FAD5B-D9CB-469F-A165-70867728950E') }
    await must(store.append({ streamId: s, expected: expected.noStream, events: [upper] }))
    expect(streams.get(s)?.[0]?.id).toBe('0f8fad5b-d9cb-469f-a165-70867728950e')
    expect((await must(store.readStream(s)))[0]?.id).toBe('0F8FAD5B-D9CB-469F-A165-70867728950E')
    // A repeat in either case is recognised (here the server answers a conflict: the adapter's scan).
    await must(store.append({ streamId: s, expected: expected.exact(1), events: [event()] }))
    const lower = { ...upper, id: unsafeId<EventId>(upper.id.toLowerCase()) }
    const again = await must(store.append({ streamId: s, expected: expected.exact(1), events: [lower] }))
    expect(again.version).toBe(1)
  })

  it('a repeated batch the server does not recognise is found by the scan, reporting its last event', async () => {
    const { client, streams } = emulatedClient()
    const store = createEventStoreDbEventStore({ client })
    const s = unsafeId<StreamId>('referral-rescan')
    const batch = [event('A'), event('B')]
    await must(store.append({ streamId: s, expected: expected.noStream, events: batch }))
    await must(store.append({ streamId: s, expected: expected.exact(2), events: [event('C')] }))
    // Expected revision 0 is neither the original write's (no stream) nor the current one (2).
    const again = await must(store.append({ streamId: s, expected: expected.exact(1), events: batch }))
    expect(again).toEqual({ streamId: s, version: 2, position: streams.get(s)?.[1]?.position.commit })
    expect(streams.get(s)).toHaveLength(3)
  })

  it('finds repeated ids beyond the first page of the backward scan', async () => {
    const { client } = emulatedClient()
    const store = createEventStoreDbEventStore({ client })
    const s = unsafeId<StreamId>('referral-long')
    const first = event('First')
    await must(store.append({ streamId: s, expected: expected.noStream, events: [first] }))
    const filler = Array.from({ length: 1200 }, () => event('Filler'))
    await must(store.append({ streamId: s, expected: expected.exact(1), events: filler }))
    const again = await must(store.append({ streamId: s, expected: expected.exact(5), events: [first] }))
    expect(again.version).toBe(1)
    const limited = createEventStoreDbEventStore({ client }, { idempotencyScanLimit: 100 })
    expect(
      await limited.append({ streamId: s, expected: expected.exact(5), events: [first] })(),
    ).toMatchObject({
      left: { _tag: 'WrongExpectedVersion', actual: 1201 },
    })
  })

  it('checkpoint saves are compare-and-swap across processes', async () => {
    const { client, streams, streamMetadata } = emulatedClient()
    const a: CheckpointStore = createEventStoreDbCheckpointStore(client)
    const b: CheckpointStore = createEventStoreDbCheckpointStore(client)
    expect(await a.load('projection')).toBeNull()
    expect(await a.save('projection', null, 10n)).toBe(true)
    expect(await b.save('projection', null, 11n)).toBe(false)
    expect(await b.load('projection')).toBe(10n)
    expect(await b.save('projection', 10n, 20n)).toBe(true)
    // `a` still believes the checkpoint is 10: its cached revision is stale, the server refuses.
    expect(await a.save('projection', 10n, 30n)).toBe(false)
    expect(await a.load('projection')).toBe(20n)
    expect(await a.save('projection', 20n, 2n ** 64n)).toBe(true)
    expect(await b.load('projection')).toBe(2n ** 64n)
    expect(await a.load('other')).toBeNull()
    expect(streamMetadata.get('$referrals-checkpoint-projection')).toEqual({ maxCount: 10 })
    expect(streams.get('$referrals-checkpoint-projection')?.map((e) => JSON.parse(e.data))).toEqual([
      { position: '10' },
      { position: '20' },
      { position: '18446744073709551616' },
    ])
  })

  it('a subscription resumes from its checkpoint in a new process and stops cleanly', async () => {
    const { client } = emulatedClient()
    const s = unsafeId<StreamId>('referral-sub')
    const store = createEventStoreDbEventStore({ client })
    await must(store.append({ streamId: s, expected: expected.noStream, events: [event('A'), event('B')] }))
    const seen: string[] = []
    const handler = async (e: { type: string }) => {
      seen.push(e.type)
    }
    const first = store.subscribe({
      subscriptionId: 'list',
      streamPrefixes: ['referral-'],
      handler,
      batchSize: 1,
    })
    await first.caughtUp()
    await first.stop()
    await must(store.append({ streamId: s, expected: expected.exact(2), events: [event('C')] }))
    const restarted = createEventStoreDbEventStore({ client })
    const second = restarted.subscribe({ subscriptionId: 'list', streamPrefixes: ['referral-'], handler })
    await second.caughtUp()
    await restarted.close()
    expect(seen).toEqual(['A', 'B', 'C'])
  })

  it('readAll without prefixes skips system streams, including checkpoints', async () => {
    const { client, log } = emulatedClient()
    const store = createEventStoreDbEventStore({ client })
    await must(
      store.append({ streamId: unsafeId('referral-x'), expected: expected.any, events: [event('X')] }),
    )
    const sub = store.subscribe({ subscriptionId: 'noise', handler: async () => undefined })
    await sub.caughtUp()
    await sub.stop()
    expect(log.some((e) => e.streamId.startsWith('$referrals-checkpoint-'))).toBe(true)
    expect((await must(store.readAll())).map((e) => e.type)).toEqual(['X'])
  })

  it('process manager on this adapter: a crash between the appends is repaired exactly once', async () => {
    const { client, streams } = emulatedClient()
    const store = createEventStoreDbEventStore({ client })
    const rule = {
      primaryStreamPrefixes: ['pool-'],
      followUpOf: (primary: { id: string; type: string; metadata: EventMetadata }) =>
        primary.type === 'ReferralRouted'
          ? {
              streamId: unsafeId<StreamId>('referral-pm'),
              event: { type: 'ReferralOffered', schemaVersion: 1, data: {}, metadata: primary.metadata },
            }
          : null,
    }
    const dying: EventStore = {
      ...store,
      append: (request) =>
        request.streamId.startsWith('referral-')
          ? async () => E.left({ _tag: 'StoreUnavailable', reason: 'unavailable', message: 'killed' })
          : store.append(request),
    }
    const primary = event('ReferralRouted')
    const pool = unsafeId<StreamId>('pool-pm')
    expect(
      await createTwoStreamWriter(dying, rule).write({
        streamId: pool,
        expected: expected.noStream,
        events: [primary],
      })(),
    ).toMatchObject({ _tag: 'Left' })
    const writer = createTwoStreamWriter(store, rule)
    const subscription = writer.run('pm-follow-ups')
    await subscription.caughtUp()
    await subscription.stop()
    expect(await must(writer.repair())).toMatchObject({ scanned: 1, written: 0 })
    // The original request retried by the caller is a no-op on both streams.
    expect(
      await must(writer.write({ streamId: pool, expected: expected.noStream, events: [primary] })),
    ).toMatchObject({
      followUps: ['already-present'],
    })
    expect(streams.get('referral-pm')?.map((e) => e.id)).toEqual([followUpEventId(primary.id)])
    expect(streams.get('pool-pm')).toHaveLength(1)
  })

  it('a subscription dropped by the server reports a mapped error once, after handling what it got', async () => {
    const { client } = emulatedClient({
      dropFirstSubscriptionWith: new UnavailableError(undefined, 'patient Jane Doe'),
    })
    const store = createEventStoreDbEventStore({ client })
    await must(
      store.append({
        streamId: unsafeId('referral-drop'),
        expected: expected.noStream,
        events: [event('A')],
      }),
    )
    const seen: string[] = []
    const errors: unknown[] = []
    const sub = store.subscribe({
      subscriptionId: 'dropped',
      streamPrefixes: ['referral-'],
      handler: async (e) => {
        seen.push(e.type)
      },
      onError: (e) => errors.push(e),
    })
    await vi.waitFor(() => expect(errors).toHaveLength(1))
    await sub.caughtUp()
    await sub.stop()
    expect(seen).toEqual(['A'])
    expect(errors.map(String)).toEqual(['Error: EventStoreDB subscribe failed: server unavailable'])
  })
})
