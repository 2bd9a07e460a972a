import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { dumbo } from '@event-driven-io/dumbo'
import { getPostgreSQLEventStore, readMessagesBatch } from '@event-driven-io/emmett-postgresql'
import {
  type AppendRequest,
  createInMemoryEventStore,
  type EventId,
  type EventMetadata,
  type EventStore,
  type ExpectedVersion,
  expected,
  type GlobalPosition,
  type Instant,
  type NewEvent,
  type StreamId,
  unsafeId,
} from '@referrals/core'
import { createPostgresEventStore, ensureDatabase, startEmbeddedPostgres } from '@referrals/postgres'
import * as E from 'fp-ts/lib/Either.js'
import { type CommitRateResult, runCommitRate } from './commit-rate.js'

/**
 * Append and replay throughput of the in-memory store, the PostgreSQL adapter, and Emmett's
 * PostgreSQL event store (a peer library) on the same PostgreSQL server. Every store runs the same
 * workloads with the same event shape; the figures are events per second (higher is better).
 */

/** A store under test, reduced to the operations the workloads need. */
interface BenchStore {
  readonly label: string
  /** Appends `count` events to `stream` whose current version is `version`, with an exact expected version. */
  readonly append: (stream: string, version: number, events: readonly NewEvent[]) => Promise<void>
  readonly readStream: (stream: string) => Promise<number>
  /** Reads every event after the start in pages, adding each event id to `seen`; returns how many. */
  readonly readAll: (pageSize: number, seen: Set<string>) => Promise<number>
  readonly close: () => Promise<void>
}

const metadata: EventMetadata = {
  actor: { kind: 'system', component: 'bench' },
  correlationId: unsafeId('corr-bench'),
  commandId: unsafeId('cmd-bench'),
  occurredAt: unsafeId<Instant>('2026-01-01T00:00:00.000Z'),
}

const makeEvent = (i: number): NewEvent => ({
  id: unsafeId<EventId>(globalThis.crypto.randomUUID()),
  type: 'ReferralNoteAdded',
  schemaVersion: 1,
  data: { referralId: `r-${i}`, sequence: i, note: 'x'.repeat(120), tags: ['a', 'b', 'c'] },
  metadata,
})

const expectOk = async <A>(task: () => Promise<E.Either<{ readonly _tag: string }, A>>): Promise<A> => {
  const r = await task()
  if (E.isLeft(r)) throw new Error(`store error ${r.left._tag}`)
  return r.right
}

const fromEventStore = (label: string, store: EventStore): BenchStore => ({
  label,
  append: async (stream, version, events) => {
    const exp: ExpectedVersion = version === 0 ? expected.noStream : expected.exact(version)
    const request: AppendRequest = { streamId: unsafeId<StreamId>(stream), expected: exp, events }
    await expectOk(store.append(request))
  },
  readStream: async (stream) => (await expectOk(store.readStream(unsafeId<StreamId>(stream)))).length,
  readAll: async (pageSize, seen) => {
    let after: GlobalPosition = 0n
    let total = 0
    for (;;) {
      const page = await expectOk(store.readAll({ after, maxCount: pageSize }))
      total += page.length
      for (const e of page) seen.add(e.id)
      const last = page.at(-1)
      if (last === undefined) return total
      after = last.globalPosition
    }
  },
  close: () => store.close(),
})

const emmettStore = async (connectionString: string): Promise<BenchStore> => {
  const store = getPostgreSQLEventStore(connectionString)
  await store.schema.migrate()
  const pool = dumbo({ connectionString })
  return {
    label: 'emmett-postgresql',
    append: async (stream, version, events) => {
      await store.appendToStream(
        stream,
        events.map((e) => ({
          type: e.type,
          data: e.data as Record<string, unknown>,
          metadata: { ...e.metadata },
        })),
        { expectedStreamVersion: BigInt(version) },
      )
    },
    readStream: async (stream) => (await store.readStream(stream)).events.length,
    readAll: async (pageSize, seen) => {
      let after = 0n
      let total = 0
      for (;;) {
        const batch = await readMessagesBatch(pool.execute, { after, batchSize: pageSize })
        total += batch.messages.length
        for (const m of batch.messages) seen.add(m.metadata.messageId)
        if (batch.messages.length === 0) return total
        after = batch.currentGlobalPosition
      }
    },
    close: async () => {
      await store.close()
      await pool.close()
    },
  }
}

/** Runs `task` over `items` with at most `concurrency` in flight. */
const pooled = async <T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>) => {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++] as T
        await task(item)
      }
    }),
  )
}

const time = async (
  f: () => Promise<number>,
): Promise<{ events: number; seconds: number; perSecond: number }> => {
  const start = process.hrtime.bigint()
  const events = await f()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return { events, seconds, perSecond: events / seconds }
}

interface Scale {
  readonly singleOneStream: number
  readonly singleManyStreams: number
  readonly manyStreams: number
  readonly batchSize: number
  readonly batches: number
  readonly concurrency: number
}

const runWorkloads = async (store: BenchStore, scale: Scale, run: string) => {
  const results: Record<string, { events: number; seconds: number; perSecond: number }> = {}
  const one = `bench${run}-one`
  results['append 1 event/call, 1 stream'] = await time(async () => {
    for (let v = 0; v < scale.singleOneStream; v++) await store.append(one, v, [makeEvent(v)])
    return scale.singleOneStream
  })
  const versions = new Map<string, number>()
  const targets = Array.from(
    { length: scale.singleManyStreams },
    (_, i) => `bench${run}-s${i % scale.manyStreams}`,
  )
  // Each worker owns a slice of streams, so exact expected versions never conflict.
  const lanes = Array.from({ length: scale.concurrency }, (_, lane) =>
    targets.filter((_, i) => (i % scale.manyStreams) % scale.concurrency === lane),
  )
  results[`append 1 event/call, ${scale.manyStreams} streams, ${scale.concurrency} concurrent`] = await time(
    async () => {
      await pooled(lanes, scale.concurrency, async (lane) => {
        for (const stream of lane) {
          const v = versions.get(stream) ?? 0
          await store.append(stream, v, [makeEvent(v)])
          versions.set(stream, v + 1)
        }
      })
      return scale.singleManyStreams
    },
  )
  // Batched appends at two batch sizes (the issue asks for 1 and 10; 100 shows the trend further).
  const batchStream = `bench${run}-batch`
  let batchedEvents = 0
  for (const size of [10, scale.batchSize]) {
    const batches = Math.round((scale.batches * scale.batchSize) / size)
    const stream = size === scale.batchSize ? batchStream : `${batchStream}${size}`
    results[`append ${size} events/call, 1 stream`] = await time(async () => {
      for (let b = 0; b < batches; b++) {
        await store.append(
          stream,
          b * size,
          Array.from({ length: size }, (_, i) => makeEvent(i)),
        )
      }
      return batches * size
    })
    const manyBatches = Math.min(batches, scale.batches)
    results[`append ${size} events/call, ${manyBatches} streams, ${scale.concurrency} concurrent`] =
      await time(async () => {
        const streams = Array.from({ length: manyBatches }, (_, b) => `bench${run}-bs${size}-${b}`)
        await pooled(streams, scale.concurrency, (s) =>
          store.append(
            s,
            0,
            Array.from({ length: size }, (_, i) => makeEvent(i)),
          ),
        )
        return manyBatches * size
      })
    batchedEvents += batches * size + manyBatches * size
  }
  results[`readStream (${scale.batches * scale.batchSize} events)`] = await time(() =>
    store.readStream(batchStream),
  )
  const seen = new Set<string>()
  results['readAll replay, pages of 1000'] = await time(() => store.readAll(1000, seen))
  const appended = scale.singleOneStream + scale.singleManyStreams + batchedEvents
  const replay = {
    appended,
    replayed: results['readAll replay, pages of 1000']?.events ?? 0,
    distinct: seen.size,
  }
  return { results, replay }
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length))
const padStart = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s)
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

export const runStoreBench = async (): Promise<void> => {
  const quick = process.argv.includes('--quick')
  const scale: Scale = quick
    ? {
        singleOneStream: 200,
        singleManyStreams: 400,
        manyStreams: 100,
        batchSize: 100,
        batches: 10,
        concurrency: 8,
      }
    : {
        singleOneStream: 2000,
        singleManyStreams: 4000,
        manyStreams: 1000,
        batchSize: 100,
        batches: 100,
        concurrency: 8,
      }

  let stopServer: () => Promise<void> = async () => undefined
  let adminUrl = process.env.DATABASE_URL
  let dataDir: string | undefined
  if (adminUrl === undefined || adminUrl === '') {
    dataDir = await mkdtemp(path.join(tmpdir(), 'referrals-bench-pg-'))
    await chmod(dataDir, 0o755)
    const server = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'cluster'), database: 'bench' })
    adminUrl = server.connectionString
    stopServer = server.stop
    console.log('embedded PostgreSQL started (durable defaults: fsync on, synchronous_commit on)')
  }
  const url = new URL(adminUrl)
  const database = `bench_store_${Date.now().toString(36)}`
  await ensureDatabase(adminUrl, database)
  url.pathname = `/${database}`
  const benchUrl = url.toString()

  const started = Date.now()
  let commitRate: CommitRateResult | undefined
  const runs: Record<string, Record<string, { events: number; seconds: number; perSecond: number }>> = {}
  const replays: Record<string, { appended: number; replayed: number; distinct: number }> = {}
  const record = (label: string, run: Awaited<ReturnType<typeof runWorkloads>>) => {
    runs[label] = run.results
    replays[label] = run.replay
    const { appended, replayed, distinct } = run.replay
    if (replayed !== appended || distinct !== appended) {
      const note = `${label}: readAll replay returned ${replayed} events (${distinct} distinct) of ${appended} appended`
      if (label === 'emmett-postgresql') console.log(`note: ${note}`)
      else throw new Error(note)
    }
  }
  try {
    const memory = fromEventStore('in-memory', createInMemoryEventStore())
    record(memory.label, await runWorkloads(memory, scale, 'm'))
    await memory.close()

    const pg = fromEventStore(
      '@referrals/postgres',
      await createPostgresEventStore({ connectionString: benchUrl, poolSize: 10 }),
    )
    record(pg.label, await runWorkloads(pg, scale, 'p'))
    await pg.close()

    // Last: dumbo installs process-wide pg type parsers.
    const emmett = await emmettStore(benchUrl)
    record(emmett.label, await runWorkloads(emmett, scale, 'e'))
    await emmett.close()

    commitRate = await runCommitRate(benchUrl, quick)
  } catch (error) {
    console.error('benchmark failed:', error instanceof Error ? error.stack : error)
    throw error
  } finally {
    // Pools of the peer library may still hold idle connections that the server stop terminates.
    process.on('uncaughtException', () => undefined)
    await stopServer()
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
  }

  const labels = Object.keys(runs)
  const workloads = Object.keys(runs[labels[0] as string] ?? {})
  const header = `${pad('workload (events/s)', 52)}${labels.map((l) => padStart(l, 21)).join('')}${padStart('pg/emmett', 11)}${padStart('pg/memory', 11)}`
  console.log(`\n${header}\n${'-'.repeat(header.length)}`)
  for (const w of workloads) {
    const rate = (l: string) => runs[l]?.[w]?.perSecond ?? Number.NaN
    const pgRate = rate('@referrals/postgres')
    console.log(
      `${pad(w, 52)}${labels.map((l) => padStart(fmt(rate(l)), 21)).join('')}` +
        `${padStart(`${(pgRate / rate('emmett-postgresql')).toFixed(2)}x`, 11)}${padStart(`${(pgRate / rate('in-memory')).toFixed(3)}x`, 11)}`,
    )
  }
  const seconds = (Date.now() - started) / 1000
  console.log(`\ntotal ${seconds.toFixed(1)} s${quick ? ' (--quick)' : ''}; node ${process.version}`)

  const resultsDir = fileURLToPath(new URL('../results/', import.meta.url))
  await mkdir(resultsDir, { recursive: true })
  const file = path.join(resultsDir, `store-append-replay${quick ? '-quick' : ''}.json`)
  await writeFile(
    file,
    `${JSON.stringify(
      {
        benchmark: 'store append/replay',
        date: new Date().toISOString(),
        node: process.version,
        database: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL 18 (fsync on)',
        scale,
        seconds,
        unit: 'events per second',
        results: runs,
        replayCheck: replays,
        ratios: Object.fromEntries(
          workloads.map((w) => {
            const rate = (l: string) => runs[l]?.[w]?.perSecond ?? Number.NaN
            const pgRate = rate('@referrals/postgres')
            return [
              w,
              {
                postgresOverEmmett: pgRate / rate('emmett-postgresql'),
                postgresOverMemory: pgRate / rate('in-memory'),
              },
            ]
          }),
        ),
      },
      null,
      2,
    )}\n`,
  )
  console.log(`wrote ${path.relative(process.cwd(), file)}`)
  if (commitRate !== undefined) {
    const commitFile = path.join(resultsDir, `store-commit-rate${quick ? '-quick' : ''}.json`)
    await writeFile(
      commitFile,
      `${JSON.stringify(
        {
          benchmark: 'store single-event append commit rate vs raw INSERT and Emmett',
          command: `npx tsx bench/store/append-replay.ts${quick ? ' --quick' : ''}`,
          date: new Date().toISOString(),
          node: process.version,
          database: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL 18 (fsync on)',
          unit: 'appends per second (one event each), median of interleaved rounds',
          ...commitRate,
        },
        (_, v) => (typeof v === 'bigint' ? v.toString() : v),
        2,
      )}\n`,
    )
    console.log(`wrote ${path.relative(process.cwd(), commitFile)}`)
  }
}
