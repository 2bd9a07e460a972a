import { createHash } from 'node:crypto'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import { beforeAll, describe, expect, it } from 'vitest'
import type { EventMetadata } from '../envelope/metadata.js'
import { type EventId, type StreamId, unsafeId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import { expected, type NewEvent, type StoredEvent, type StoreError } from '../store/port.js'
import { describeEventStoreConformance } from '../testing/conformance.js'
import { eventHash, GENESIS_HASH, type Hasher, integrityOf, withIntegrity } from './chain.js'
import { hashChainedStore } from './hash-chained-store.js'
import { type ChainProblem, type StreamHead, verifyEventStore, verifyStore } from './verify.js'

const hasher: Hasher = { sha256Hex: (input) => createHash('sha256').update(input, 'utf8').digest('hex') }

const metadata: EventMetadata = {
  actor: { kind: 'system', component: 'test' },
  correlationId: unsafeId('corr-1'),
  commandId: unsafeId('cmd-1'),
  occurredAt: unsafeId<Instant>('2026-01-02T03:04:05.678Z'),
}

let nextId = 0
const newEvent = (data: unknown = { n: 1 }, type = 'Happened'): NewEvent => ({
  id: unsafeId<EventId>(`ev-${++nextId}`),
  type,
  schemaVersion: 1,
  data,
  metadata,
})

const ok = async <A>(task: TaskEither<StoreError, A>): Promise<A> => {
  const r = await task()
  if (E.isLeft(r)) throw new Error(`expected success, got ${r.left._tag}: ${r.left.message}`)
  return r.right
}

/** A small deterministic PRNG, so the base store is the same on every run. */
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describeEventStoreConformance('hash-chained in-memory store', async () =>
  hashChainedStore(createInMemoryEventStore(), hasher),
)

describe('hashChainedStore', () => {
  it('chains by the documented rule: sha256 of the canonical record, prev = genesis for version 1', async () => {
    const inner = createInMemoryEventStore()
    const store = hashChainedStore(inner, hasher)
    const stream = unsafeId<StreamId>('referral-r1')
    const first: NewEvent = {
      id: unsafeId('e-1'),
      type: 'Sent',
      schemaVersion: 2,
      data: { z: 1, a: 'x' },
      metadata,
    }
    await ok(store.append({ streamId: stream, expected: expected.noStream, events: [first] }))
    const [stored] = inner.snapshot()
    const text =
      '{"chain":"referrals-event-chain-v1","data":{"a":"x","z":1},"id":"e-1",' +
      '"metadata":{"actor":{"component":"test","kind":"system"},"commandId":"cmd-1",' +
      '"correlationId":"corr-1","occurredAt":"2026-01-02T03:04:05.678Z"},' +
      `"prev":"${'0'.repeat(64)}","schemaVersion":2,"streamId":"referral-r1","type":"Sent","version":1}`
    expect(stored?.metadata.integrity).toEqual({
      prev: '0'.repeat(64),
      hash: createHash('sha256').update(text).digest('hex'),
    })
  })

  it('links each event to the previous hash of its own stream', async () => {
    const inner = createInMemoryEventStore()
    const store = hashChainedStore(inner, hasher)
    const a = unsafeId<StreamId>('referral-a')
    const b = unsafeId<StreamId>('referral-b')
    await ok(store.append({ streamId: a, expected: expected.noStream, events: [newEvent(), newEvent()] }))
    await ok(store.append({ streamId: b, expected: expected.any, events: [newEvent()] }))
    await ok(store.append({ streamId: a, expected: expected.exact(2), events: [newEvent()] }))
    const events = inner.snapshot()
    const ofA = events.filter((e) => e.streamId === a).map((e) => e.metadata.integrity)
    expect(ofA[0]?.prev).toBe(GENESIS_HASH)
    expect(ofA[1]?.prev).toBe(ofA[0]?.hash)
    expect(ofA[2]?.prev).toBe(ofA[1]?.hash)
    expect(events.find((e) => e.streamId === b)?.metadata.integrity?.prev).toBe(GENESIS_HASH)
  })

  it('rejects data that is not JSON as an invalid append, writing nothing', async () => {
    const inner = createInMemoryEventStore()
    const store = hashChainedStore(inner, hasher)
    const r = await store.append({
      streamId: unsafeId('referral-x'),
      expected: expected.any,
      events: [newEvent({ at: new Date(0) })],
    })()
    expect(E.isLeft(r) && r.left._tag).toBe('InvalidAppend')
    expect(inner.snapshot()).toHaveLength(0)
  })

  it('refuses to extend a stream whose last event is not chained', async () => {
    const inner = createInMemoryEventStore()
    const stream = unsafeId<StreamId>('referral-legacy')
    await ok(inner.append({ streamId: stream, expected: expected.noStream, events: [newEvent()] }))
    const r = await hashChainedStore(inner, hasher).append({
      streamId: stream,
      expected: expected.any,
      events: [newEvent()],
    })()
    expect(E.isLeft(r) && r.left._tag).toBe('InvalidAppend')
  })

  it('keeps a valid chain under concurrent appends with expected any, losing no event', async () => {
    const inner = createInMemoryEventStore()
    const store = hashChainedStore(inner, hasher)
    const streams = [unsafeId<StreamId>('pool-1'), unsafeId<StreamId>('pool-2')]
    const writers = Array.from({ length: 10 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 20; i++) {
          const streamId = streams[(w + i) % 2] as StreamId
          await ok(store.append({ streamId, expected: expected.any, events: [newEvent({ w, i })] }))
        }
      })(),
    )
    await Promise.all(writers)
    const events = inner.snapshot()
    expect(events).toHaveLength(200)
    const report = await verifyStore(events, hasher)
    expect(report.ok).toBe(true)
    if (report.ok) expect(report.heads.map((h) => h.version)).toEqual([100, 100])
  })

  it('lets exactly one of many concurrent exact(n) appends win and keeps the chain valid', async () => {
    const inner = createInMemoryEventStore()
    const store = hashChainedStore(inner, hasher)
    const stream = unsafeId<StreamId>('referral-race')
    await ok(store.append({ streamId: stream, expected: expected.noStream, events: [newEvent()] }))
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        store.append({ streamId: stream, expected: expected.exact(1), events: [newEvent()] })(),
      ),
    )
    expect(results.filter(E.isRight)).toHaveLength(1)
    for (const r of results.filter(E.isLeft)) expect(r.left).toMatchObject({ _tag: 'WrongExpectedVersion' })
    expect((await verifyStore(inner.snapshot(), hasher)).ok).toBe(true)
  })

  it('keeps chains valid across streams appended together with appendMany', async () => {
    const inner = createInMemoryEventStore()
    const store = hashChainedStore(inner, hasher)
    const a = unsafeId<StreamId>('referral-m')
    const b = unsafeId<StreamId>('pool-m')
    await ok(store.append({ streamId: a, expected: expected.noStream, events: [newEvent()] }))
    await ok(
      store.appendMany([
        { streamId: a, expected: expected.exact(1), events: [newEvent()] },
        { streamId: b, expected: expected.noStream, events: [newEvent(), newEvent()] },
      ]),
    )
    await ok(
      store.appendMany([
        { streamId: a, expected: expected.any, events: [newEvent()] },
        { streamId: b, expected: expected.streamExists, events: [newEvent()] },
      ]),
    )
    const report = await verifyStore(inner.snapshot(), hasher)
    expect(report.ok && report.heads.map((h) => [h.streamId, h.version])).toEqual([
      [b, 3],
      [a, 3],
    ])
  })

  it('replays an idempotent append with a stale expected version as a no-op', async () => {
    const inner = createInMemoryEventStore()
    const store = hashChainedStore(inner, hasher)
    const stream = unsafeId<StreamId>('referral-idem')
    const events = [newEvent(), newEvent()]
    await ok(store.append({ streamId: stream, expected: expected.noStream, events }))
    await ok(store.append({ streamId: stream, expected: expected.any, events: [newEvent()] }))
    const replay = await ok(store.append({ streamId: stream, expected: expected.noStream, events }))
    expect(inner.snapshot()).toHaveLength(3)
    expect(replay.streamId).toBe(stream)
    const mixed = await store.append({
      streamId: stream,
      expected: expected.noStream,
      events: [events[0] as NewEvent, newEvent()],
    })()
    expect(E.isLeft(mixed) && mixed.left._tag).toBe('IdempotencyMismatch')
  })
})

describe('hashChainedStore: remembered stream heads', () => {
  /** The inner store with its backward (head) reads counted. */
  const countedInner = () => {
    const inner = createInMemoryEventStore()
    const counts = { headReads: 0 }
    const store = {
      ...inner,
      readStream: ((streamId, options) => {
        if (options?.direction === 'backward') counts.headReads++
        return inner.readStream(streamId, options)
      }) as typeof inner.readStream,
    }
    return { inner, store, counts }
  }

  it('appends after its own read or append, and to a new stream, without reading the head', async () => {
    const { inner, store: base, counts } = countedInner()
    const store = hashChainedStore(base, hasher)
    const stream = unsafeId<StreamId>('referral-h1')
    await ok(store.append({ streamId: stream, expected: expected.noStream, events: [newEvent()] }))
    await ok(store.append({ streamId: stream, expected: expected.exact(1), events: [newEvent()] }))
    await ok(store.readStream(stream))
    await ok(store.append({ streamId: stream, expected: expected.exact(2), events: [newEvent()] }))
    expect(counts.headReads).toBe(0)
    // Without the cache every one of these appends reads the head first.
    const uncached = hashChainedStore(base, hasher, { headCacheSize: 0 })
    await ok(uncached.append({ streamId: stream, expected: expected.exact(3), events: [newEvent()] }))
    expect(counts.headReads).toBe(1)
    expect((await verifyStore(inner.snapshot(), hasher)).ok).toBe(true)
  })

  it('keeps every chain valid when another writer (another process) moved the remembered head', async () => {
    const { inner, store: base } = countedInner()
    const mine = hashChainedStore(base, hasher)
    const theirs = hashChainedStore(base, hasher)
    const stream = unsafeId<StreamId>('pool-shared')
    await ok(mine.append({ streamId: stream, expected: expected.noStream, events: [newEvent()] }))
    await ok(theirs.append({ streamId: stream, expected: expected.any, events: [newEvent()] }))
    // `mine` remembers version 1: its `any` append goes through after a real read of the head …
    await ok(mine.append({ streamId: stream, expected: expected.any, events: [newEvent()] }))
    await ok(theirs.append({ streamId: stream, expected: expected.streamExists, events: [newEvent()] }))
    // … and an exact(1) caller whose expectation no longer holds gets the conflict, not a write.
    const stale = await mine.append({ streamId: stream, expected: expected.exact(1), events: [newEvent()] })()
    expect(E.isLeft(stale) && stale.left).toMatchObject({ _tag: 'WrongExpectedVersion', actual: 4 })
    // Interleaved writers through both decorators, all with remembered heads.
    await Promise.all(
      [mine, theirs].map(async (store, w) => {
        for (let i = 0; i < 25; i++)
          await ok(store.append({ streamId: stream, expected: expected.any, events: [newEvent({ w, i })] }))
      }),
    )
    const report = await verifyStore(inner.snapshot(), hasher)
    expect(report.ok).toBe(true)
    if (report.ok) expect(report.heads.map((h) => h.version)).toEqual([54])
  })

  it('replays an idempotent no_stream append without remembering a head it did not write', async () => {
    const { inner, store: base } = countedInner()
    const store = hashChainedStore(base, hasher)
    const stream = unsafeId<StreamId>('referral-idem-h')
    const events = [newEvent(), newEvent()]
    await ok(store.append({ streamId: stream, expected: expected.noStream, events }))
    await ok(
      hashChainedStore(base, hasher).append({
        streamId: stream,
        expected: expected.any,
        events: [newEvent()],
      }),
    )
    await ok(store.append({ streamId: stream, expected: expected.noStream, events }))
    await ok(store.append({ streamId: stream, expected: expected.any, events: [newEvent()] }))
    expect(inner.snapshot()).toHaveLength(4)
    expect((await verifyStore(inner.snapshot(), hasher)).ok).toBe(true)
  })
})

describe('verifyStore', () => {
  let pristine: readonly StoredEvent[]
  let checkpoint: readonly StreamHead[]
  let summaryHash: string

  beforeAll(async () => {
    const inner = createInMemoryEventStore()
    const store = hashChainedStore(inner, hasher)
    const random = mulberry32(42)
    const streams = ['referral-a', 'referral-b', 'referral-c', 'practice-p', 'pool-q', 'pool-r']
    while (inner.snapshot().length < 90) {
      const streamId = unsafeId<StreamId>(streams[Math.floor(random() * streams.length)] as string)
      const count = 1 + Math.floor(random() * 3)
      const events = Array.from({ length: count }, () =>
        newEvent({ n: Math.floor(random() * 1000), phi: { sealed: 'c2VhbGVk' } }),
      )
      await ok(store.append({ streamId, expected: expected.any, events }))
    }
    // Positions are only compared, never computed with; spreading them out leaves room to insert.
    pristine = inner.snapshot().map((e) => ({ ...e, globalPosition: e.globalPosition * 10n }))
    const report = await verifyStore(pristine, hasher)
    if (!report.ok) throw new Error(report.problem.message)
    checkpoint = report.heads
    summaryHash = report.summaryHash
  })

  it('accepts the untouched store and reports one summary hash over the stream heads', async () => {
    const report = await verifyStore(pristine, hasher, { checkpoint })
    expect(report.ok).toBe(true)
    if (!report.ok) return
    expect(report.eventsChecked).toBe(pristine.length)
    expect(report.heads).toHaveLength(6)
    const heads = [...report.heads]
      .sort((a, b) => (a.streamId < b.streamId ? -1 : 1))
      .map((h) => [h.streamId, h.version, h.hash])
    const text = JSON.stringify({ chain: 'referrals-store-summary-v1', heads })
    expect(report.summaryHash).toBe(createHash('sha256').update(text).digest('hex'))
    expect(report.summaryHash).toBe(summaryHash)
  })

  it('reads a whole store page by page', async () => {
    const inner = createInMemoryEventStore()
    const store = hashChainedStore(inner, hasher)
    for (let i = 0; i < 25; i++) {
      await ok(
        store.append({ streamId: unsafeId('referral-p'), expected: expected.any, events: [newEvent()] }),
      )
    }
    const report = await ok(verifyEventStore(store, hasher, { pageSize: 7 }))
    expect(report.ok && report.eventsChecked).toBe(25)
  })

  type Expected = Pick<ChainProblem, 'kind' | 'streamId' | 'version' | 'globalPosition'>
  type Mutation = { readonly events: readonly StoredEvent[]; readonly expected: Expected }

  const at = (events: readonly StoredEvent[], i: number): StoredEvent => {
    const e = events[i]
    if (e === undefined) throw new Error(`no event at ${i}`)
    return e
  }
  const nextOfStream = (events: readonly StoredEvent[], i: number): number =>
    events.findIndex((e, j) => j > i && e.streamId === at(events, i).streamId)
  const problemAt = (kind: Expected['kind'], e: StoredEvent, version = e.version): Expected => ({
    kind,
    streamId: e.streamId,
    version,
    globalPosition: e.globalPosition,
  })

  const modify = (pick: number, variant: number): Mutation => {
    const events = [...pristine]
    const i = pick % events.length
    const e = at(events, i)
    const data = e.data as { n: number }
    const changed: StoredEvent[] = [
      { ...e, data: { ...data, n: data.n + 1 } },
      { ...e, type: `${e.type}X` },
      { ...e, schemaVersion: e.schemaVersion + 1 },
      { ...e, id: unsafeId<EventId>(`${e.id}x`) },
      { ...e, metadata: { ...e.metadata, occurredAt: unsafeId<Instant>('2027-01-01T00:00:00.000Z') } },
    ]
    events[i] = changed[variant % changed.length] as StoredEvent
    return { events, expected: problemAt('altered', e) }
  }

  /** A forger who alters an event and recomputes its own hash: caught at the next link or the checkpoint. */
  const modifyAndRehash = (pick: number): Mutation => {
    const events = [...pristine]
    const i = pick % events.length
    const e = at(events, i)
    const integrity = integrityOf(e.metadata) as { prev: string; hash: string }
    const data = { ...(e.data as object), n: -1 }
    const hash = eventHash(hasher, integrity.prev, { ...e, data })
    events[i] = { ...e, data, metadata: withIntegrity(e.metadata, { prev: integrity.prev, hash }) }
    const j = nextOfStream(events, i)
    return { events, expected: problemAt('altered', j === -1 ? e : at(events, j)) }
  }

  const remove = (pick: number): Mutation => {
    const i = pick % pristine.length
    const e = at(pristine, i)
    const j = nextOfStream(pristine, i)
    const events = pristine.filter((_, k) => k !== i)
    return {
      events,
      expected:
        j === -1
          ? { kind: 'truncated', streamId: e.streamId, version: e.version, globalPosition: null }
          : problemAt('removed', at(pristine, j), e.version),
    }
  }

  /** Two events of one stream swap places; the positions stay with the slots. */
  const swapWithinStream = (pick: number, offset: number): Mutation => {
    const candidates = pristine.map((_, i) => i).filter((i) => nextOfStream(pristine, i) !== -1)
    const i = candidates[pick % candidates.length] as number
    const e = at(pristine, i)
    const later = pristine.map((_, k) => k).filter((k) => k > i && at(pristine, k).streamId === e.streamId)
    const j = later[offset % later.length] as number
    const f = at(pristine, j)
    const events = [...pristine]
    events[i] = { ...f, globalPosition: e.globalPosition }
    events[j] = { ...e, globalPosition: f.globalPosition }
    return { events, expected: problemAt('reordered', at(events, i), e.version) }
  }

  /** Two neighbouring records swap places, positions and all. */
  const swapNeighbours = (pick: number): Mutation => {
    const i = pick % (pristine.length - 1)
    const e = at(pristine, i)
    const f = at(pristine, i + 1)
    const events = [...pristine]
    events[i] = f
    events[i + 1] = e
    return {
      events,
      expected: e.streamId === f.streamId ? problemAt('reordered', f, e.version) : problemAt('reordered', e),
    }
  }

  /** A forged sibling of an event (same stream and version, valid hash) placed after the original. */
  const insertForgedSibling = (pick: number, offset: number): Mutation => {
    const j = pick % pristine.length
    const original = at(pristine, j)
    const integrity = integrityOf(original.metadata) as { prev: string; hash: string }
    const k = j + 1 + (offset % (pristine.length - j))
    const before = at(pristine, k - 1)
    const forged0: StoredEvent = {
      ...original,
      id: unsafeId<EventId>(`forged-${j}`),
      data: { n: 4242, phi: { sealed: 'Zm9yZ2Vk' } },
      globalPosition: before.globalPosition + 5n,
    }
    const hash = eventHash(hasher, integrity.prev, forged0)
    const forged = { ...forged0, metadata: withIntegrity(forged0.metadata, { prev: integrity.prev, hash }) }
    const events = [...pristine.slice(0, k), forged, ...pristine.slice(k)]
    return { events, expected: problemAt('inserted', forged) }
  }

  /** A copied event with a new id but its original integrity field: its hash no longer matches. */
  const insertCopy = (pick: number, offset: number): Mutation => {
    const j = pick % pristine.length
    const k = offset % (pristine.length + 1)
    const position = k === 0 ? at(pristine, 0).globalPosition - 5n : at(pristine, k - 1).globalPosition + 5n
    const copy: StoredEvent = {
      ...at(pristine, j),
      id: unsafeId<EventId>(`copy-${j}`),
      globalPosition: position,
    }
    const events = [...pristine.slice(0, k), copy, ...pristine.slice(k)]
    return { events, expected: problemAt('altered', copy) }
  }

  /** A contiguous run of events cut out of the middle of the log. */
  const truncateMiddle = (pick: number, length: number): Mutation => {
    const len = 2 + (length % 10)
    const i = 1 + (pick % (pristine.length - len - 1))
    const cut = pristine.slice(i, i + len)
    const events = [...pristine.slice(0, i), ...pristine.slice(i + len)]
    const firstCut = new Map<StreamId, number>()
    for (const e of cut) if (!firstCut.has(e.streamId)) firstCut.set(e.streamId, e.version)
    const detector = events.slice(i).find((e) => firstCut.has(e.streamId))
    if (detector !== undefined) {
      return { events, expected: problemAt('removed', detector, firstCut.get(detector.streamId)) }
    }
    const [streamId, version] = [...firstCut.entries()].sort(([a], [b]) => (a < b ? -1 : 1))[0] as [
      StreamId,
      number,
    ]
    return { events, expected: { kind: 'truncated', streamId, version, globalPosition: null } }
  }

  const mutations: readonly ((a: number, b: number) => Mutation)[] = [
    modify,
    (a) => modifyAndRehash(a),
    (a) => remove(a),
    swapWithinStream,
    (a) => swapNeighbours(a),
    insertForgedSibling,
    insertCopy,
    truncateMiddle,
  ]

  it('detects every one of 1,200 random single mutations at the right place with the right kind', async () => {
    const seen = new Set<string>()
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: mutations.length - 1 }), fc.nat(), fc.nat(), async (which, a, b) => {
        const mutation = (mutations[which] as (a: number, b: number) => Mutation)(a, b)
        const report = await verifyStore(mutation.events, hasher, { checkpoint })
        expect(report.ok).toBe(false)
        if (report.ok) return
        const { kind, streamId, version, globalPosition } = report.problem
        expect({ kind, streamId, version, globalPosition }).toEqual(mutation.expected)
        seen.add(kind)
      }),
      { numRuns: 1200, seed: 20260123 },
    )
    expect([...seen].sort()).toEqual(['altered', 'inserted', 'removed', 'reordered', 'truncated'])
  })

  it('without a checkpoint still catches a removed tail of a stream only as far as later events show', async () => {
    const last = pristine.length - 1
    const events = pristine.slice(0, last)
    expect((await verifyStore(events, hasher)).ok).toBe(true)
    const report = await verifyStore(events, hasher, { checkpoint })
    expect(report.ok ? null : report.problem.kind).toBe('truncated')
  })

  it('names streams, versions and positions in its messages, never event data', async () => {
    const events = [...pristine]
    const e = at(events, 3)
    events[3] = { ...e, data: { n: 1, canary: 'Jane Canary' } }
    const report = await verifyStore(events, hasher)
    expect(report.ok).toBe(false)
    if (!report.ok) {
      expect(report.problem.message).toContain(e.streamId)
      expect(report.problem.message).not.toContain('Canary')
    }
  })
})
