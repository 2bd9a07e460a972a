import { availableParallelism } from 'node:os'
import { dumbo } from '@event-driven-io/dumbo'
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql'
import {
  type EventId,
  type EventMetadata,
  type ExpectedVersion,
  expected,
  type Instant,
  type NewEvent,
  type StreamId,
  unsafeId,
} from '@referrals/core'
import { createPostgresEventStore } from '@referrals/postgres'
import * as E from 'fp-ts/lib/Either.js'
import pg from 'pg'
import { RAW_INSERT_SQL, RAW_TABLE_DDL } from './raw-insert.js'

/**
 * Commit rate of single-event appends against the limit of the server: a raw one-row INSERT that
 * commits on its own (its own table, one primary key, the same payload bytes, fsync and
 * synchronous commit on as for the stores). Stores and the raw insert run in interleaved rounds,
 * so a noisy neighbour slows all of them alike; the figure is the median round.
 */

const CLIENTS = [1, 16] as const

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

/** One writer's append: to `stream`, whose version is `version` (0: a new stream). */
type Append = (stream: string, version: number, event: NewEvent) => Promise<void>

interface Contender {
  readonly label: string
  readonly append: Append
  readonly close: () => Promise<void>
}

/** Every `Client#query` is one round trip (the extended protocol ends each with Sync). */
let queries = 0
const countQueries = () => {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }
  const original = proto.query
  proto.query = function (this: unknown, ...args: unknown[]) {
    queries++
    return original.apply(this, args)
  }
}

const rawInsert = async (url: string, max: number): Promise<Contender> => {
  const pool = new pg.Pool({ connectionString: url, max })
  await pool.query(RAW_TABLE_DDL)
  return {
    label: 'raw INSERT',
    append: async (stream, _version, e) => {
      await pool.query({
        name: 'bench.raw',
        text: RAW_INSERT_SQL,
        values: [stream, e.id, e.type, JSON.stringify(e.data), JSON.stringify(e.metadata)],
      })
    },
    close: () => pool.end(),
  }
}

const ours = async (
  url: string,
  max: number,
  options: { readonly migrate?: boolean } = {},
): Promise<Contender> => {
  const store = await createPostgresEventStore({ connectionString: url, poolSize: max, ...options })
  return {
    label: '@referrals/postgres',
    append: async (stream, version, event) => {
      const exp: ExpectedVersion = version === 0 ? expected.noStream : expected.exact(version)
      const r = await store.append({ streamId: unsafeId<StreamId>(stream), expected: exp, events: [event] })()
      if (E.isLeft(r)) throw new Error(`append failed: ${r.left._tag}`)
    },
    close: () => store.close(),
  }
}

const emmett = async (url: string, max: number): Promise<Contender> => {
  // Its default pool has 10 connections; give it as many as the others get.
  const pgPool = new pg.Pool({ connectionString: url, max })
  const store = getPostgreSQLEventStore(url, {
    connectionOptions: { dumbo: dumbo({ connectionString: url, pool: pgPool }) },
  })
  await store.schema.migrate()
  return {
    label: 'emmett-postgresql',
    append: async (stream, version, e) => {
      await store.appendToStream(
        stream,
        [{ type: e.type, data: e.data as Record<string, unknown>, metadata: { ...e.metadata } }],
        { expectedStreamVersion: BigInt(version) },
      )
    },
    close: async () => {
      await store.close()
      await pgPool.end()
    },
  }
}

export type Workload = 'new stream' | 'existing stream'
const WORKLOADS: readonly Workload[] = ['new stream', 'existing stream']

interface Slice {
  readonly appends: number
  readonly seconds: number
  readonly walBytes: number
  readonly queries: number
}

let streamCounter = 0

/** `clients` writers for `ms` (and at most `maxAppends` appends in all). */
const slice = async (
  admin: pg.Pool,
  contender: Contender,
  workload: Workload,
  clients: number,
  ms: number,
  maxAppends: number,
): Promise<Slice> => {
  const run = (streamCounter++).toString(36)
  const lsn = async () =>
    (await admin.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]?.lsn ?? '0/0'
  const before = await lsn()
  const queriesBefore = queries
  let appends = 0
  const start = process.hrtime.bigint()
  const deadline = Date.now() + ms
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      let version = 0
      for (let i = 0; Date.now() < deadline && appends < maxAppends; i++) {
        appends++
        if (workload === 'new stream') await contender.append(`cr${run}-${c}-${i}`, 0, makeEvent(i))
        else await contender.append(`cr${run}-${c}`, version++, makeEvent(i))
      }
    }),
  )
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const queriesDone = queries - queriesBefore
  const after = await lsn()
  const diff = await admin.query<{ bytes: string }>('SELECT pg_wal_lsn_diff($1, $2)::text AS bytes', [
    after,
    before,
  ])
  return { appends, seconds, walBytes: Number(diff.rows[0]?.bytes ?? 0), queries: queriesDone }
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}

export interface CommitRateFigure {
  readonly rounds: readonly number[]
  readonly perSecond: number
  readonly walBytesPerAppend: number
  readonly roundTripsPerAppend: number
  readonly meanLatencyMs: number
}

export interface CommitRateResult {
  readonly figures: Record<string, Record<string, Record<string, CommitRateFigure>>>
  readonly ratios: Record<string, Record<string, { oursOverRaw: number; oursOverEmmett: number }>>
  readonly scaling: Record<string, { ours: number; raw: number; emmett: number }>
  readonly targets: readonly { readonly target: string; readonly value: number; readonly met: boolean }[]
  readonly diagnosis: Record<string, unknown>
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length))
const padStart = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s)

/** EXPLAIN (ANALYZE, BUFFERS, WAL) of one statement, in a transaction that is rolled back. */
const explain = async (
  admin: pg.Pool,
  sql: string,
  warm: () => readonly unknown[],
  values: readonly unknown[],
): Promise<string[]> => {
  const client = await admin.connect()
  try {
    await client.query('BEGIN')
    // Run it a few times first, so plans and caches are warm as on a pooled connection.
    for (let i = 0; i < 10; i++) await client.query(sql, [...warm()])
    const r = await client.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, BUFFERS, WAL, TIMING, SUMMARY) ${sql}`,
      [...values],
    )
    return r.rows.map((row) => row['QUERY PLAN'])
  } finally {
    await client.query('ROLLBACK').catch(() => undefined)
    client.release()
  }
}

/** Where the time of one sequential append goes: with and without waiting for the WAL flush. */
const latencySplit = async (url: string, make: (url: string) => Promise<Contender>, n: number) => {
  const measure = async (contender: Contender) => {
    for (let i = 0; i < 20; i++) await contender.append(`warm-${streamCounter++}`, 0, makeEvent(i))
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) await contender.append(`split-${streamCounter++}`, 0, makeEvent(i))
    return Number(process.hrtime.bigint() - start) / 1e6 / n
  }
  const durable = await make(url)
  const noWait = new URL(url)
  noWait.searchParams.set('options', '-c synchronous_commit=off')
  const async_ = await make(noWait.toString())
  try {
    const on = [] as number[]
    const off = [] as number[]
    for (let r = 0; r < 3; r++) {
      on.push(await measure(durable))
      off.push(await measure(async_))
    }
    return { durableMs: median(on), withoutFlushWaitMs: median(off) }
  } finally {
    await durable.close()
    await async_.close()
  }
}

export const runCommitRate = async (url: string, quick: boolean): Promise<CommitRateResult> => {
  countQueries()
  const rounds = quick ? 4 : 10
  const ms = quick ? 300 : 500
  const maxAppends = 200_000
  const admin = new pg.Pool({ connectionString: url, max: 2 })
  const max = Math.max(...CLIENTS)
  const contenders = [await rawInsert(url, max), await ours(url, max), await emmett(url, max)]
  const figures: CommitRateResult['figures'] = {}
  try {
    for (const workload of WORKLOADS) {
      for (const clients of CLIENTS) {
        const slices: Record<string, Slice[]> = {}
        for (let r = 0; r < rounds; r++) {
          // Short slices, the order rotating each round: a burst of load from elsewhere on the
          // machine hits every contender alike.
          for (const c of [...contenders.slice(r % 3), ...contenders.slice(0, r % 3)]) {
            const list = slices[c.label] ?? []
            list.push(await slice(admin, c, workload, clients, ms, maxAppends))
            slices[c.label] = list
          }
        }
        for (const [label, xs] of Object.entries(slices)) {
          const rates = xs.map((x) => x.appends / x.seconds)
          const total = xs.reduce((a, x) => a + x.appends, 0)
          const figure: CommitRateFigure = {
            rounds: rates,
            perSecond: median(rates),
            walBytesPerAppend: xs.reduce((a, x) => a + x.walBytes, 0) / total,
            roundTripsPerAppend: xs.reduce((a, x) => a + x.queries, 0) / total,
            meanLatencyMs: (xs.reduce((a, x) => a + x.seconds, 0) * 1000 * clients) / total,
          }
          const byClients = figures[workload] ?? {}
          const byLabel = byClients[`${clients}`] ?? {}
          byLabel[label] = figure
          byClients[`${clients}`] = byLabel
          figures[workload] = byClients
        }
      }
    }
  } finally {
    for (const c of contenders) await c.close()
  }

  const rate = (w: Workload, clients: number, label: string) =>
    figures[w]?.[`${clients}`]?.[label]?.perSecond ?? Number.NaN
  const ratios: CommitRateResult['ratios'] = {}
  const scaling: CommitRateResult['scaling'] = {}
  for (const w of WORKLOADS) {
    for (const clients of CLIENTS) {
      const o = rate(w, clients, '@referrals/postgres')
      const byClients = ratios[w] ?? {}
      ratios[w] = byClients
      byClients[`${clients}`] = {
        oursOverRaw: o / rate(w, clients, 'raw INSERT'),
        oursOverEmmett: o / rate(w, clients, 'emmett-postgresql'),
      }
    }
    scaling[w] = {
      ours: rate(w, 16, '@referrals/postgres') / rate(w, 1, '@referrals/postgres'),
      raw: rate(w, 16, 'raw INSERT') / rate(w, 1, 'raw INSERT'),
      emmett: rate(w, 16, 'emmett-postgresql') / rate(w, 1, 'emmett-postgresql'),
    }
  }

  console.log(
    `\nSingle-event append commit rate (appends/s, median of ${rounds} interleaved rounds of ${ms} ms; raw INSERT = one-row insert + commit, same server, fsync on)`,
  )
  const header = `${pad('workload', 30)}${padStart('clients', 8)}${padStart('raw INSERT', 12)}${padStart('ours', 9)}${padStart('emmett', 9)}${padStart('ours/raw', 10)}${padStart('ours/emmett', 13)}${padStart('WAL B/append (raw/ours/emmett)', 33)}${padStart('round trips', 13)}`
  console.log(`${header}\n${'-'.repeat(header.length)}`)
  for (const w of WORKLOADS) {
    for (const clients of CLIENTS) {
      const f = figures[w]?.[`${clients}`] ?? {}
      const r = ratios[w]?.[`${clients}`]
      const wal = ['raw INSERT', '@referrals/postgres', 'emmett-postgresql']
        .map((l) => fmt(f[l]?.walBytesPerAppend ?? Number.NaN))
        .join(' / ')
      const trips = ['raw INSERT', '@referrals/postgres', 'emmett-postgresql']
        .map((l) => (f[l]?.roundTripsPerAppend ?? Number.NaN).toFixed(1))
        .join('/')
      console.log(
        `${pad(`append 1 event, ${w}`, 30)}${padStart(`${clients}`, 8)}${padStart(fmt(rate(w, clients, 'raw INSERT')), 12)}${padStart(fmt(rate(w, clients, '@referrals/postgres')), 9)}${padStart(fmt(rate(w, clients, 'emmett-postgresql')), 9)}` +
          `${padStart(`${r?.oursOverRaw.toFixed(2)}x`, 10)}${padStart(`${r?.oursOverEmmett.toFixed(2)}x`, 13)}${padStart(wal, 33)}${padStart(trips, 13)}`,
      )
    }
  }
  for (const w of WORKLOADS) {
    const s = scaling[w]
    console.log(
      `16 clients / 1 client, ${w}: ours ${s?.ours.toFixed(2)}x, raw INSERT ${s?.raw.toFixed(2)}x, emmett ${s?.emmett.toFixed(2)}x`,
    )
  }

  const primary: Workload = 'new stream'
  const targets = [
    {
      target: 'ours / raw INSERT, 1 client >= 0.8',
      value: ratios[primary]?.['1']?.oursOverRaw ?? Number.NaN,
      bound: 0.8,
    },
    {
      target: 'ours / emmett, 1 client >= 2',
      value: ratios[primary]?.['1']?.oursOverEmmett ?? Number.NaN,
      bound: 2,
    },
    { target: 'ours 16 clients / ours 1 client >= 3', value: scaling[primary]?.ours ?? Number.NaN, bound: 3 },
  ].map((t) => ({ target: t.target, value: t.value, met: t.value >= t.bound }))
  console.log(`\nTargets (append 1 event to a new stream):`)
  for (const t of targets)
    console.log(`  ${t.met ? 'met    ' : 'NOT MET'}  ${t.target}: ${t.value.toFixed(2)}`)

  // Why: what one append costs the server, next to the raw insert.
  const diagnosis: Record<string, unknown> = {}
  const eventJson = (e: NewEvent) =>
    JSON.stringify([{ id: e.id, type: e.type, schemaVersion: 1, data: e.data, metadata: e.metadata }])
  const event = makeEvent(0)
  const eventsJson = eventJson(event)
  const appendSql =
    'SELECT status, stream_version, last_position FROM referrals.append_events($1, $2, $3, $4::json)'
  const oursPlan = await explain(
    admin,
    appendSql,
    () => [`explain-${streamCounter++}`, 'no_stream', null, eventJson(makeEvent(1))],
    [`explain-${streamCounter++}`, 'no_stream', null, eventsJson],
  ).catch((e: unknown) => [`EXPLAIN failed: ${String(e)}`])
  const rawValues = (e: NewEvent) => [
    `explain-${streamCounter++}`,
    e.id,
    e.type,
    JSON.stringify(e.data),
    JSON.stringify(e.metadata),
  ]
  const rawPlan = await explain(admin, RAW_INSERT_SQL, () => rawValues(makeEvent(1)), rawValues(event)).catch(
    (e: unknown) => [`EXPLAIN failed: ${String(e)}`],
  )
  const innerPlans: Record<string, string[]> = {}
  const stream = `explain-${streamCounter++}`
  const inner: Record<string, [string, unknown[]]> = {
    'version and last writer probe': [
      'SELECT ev.version, ev.transaction_id FROM referrals.events ev WHERE ev.stream_id = $1 ORDER BY ev.version DESC LIMIT 1',
      [stream],
    ],
    'idempotency probe': [
      `SELECT count(*) FROM referrals.events ev WHERE ev.event_id = ANY (ARRAY(SELECT e->>'id' FROM json_array_elements($1::json) AS e))`,
      [eventsJson],
    ],
  }
  for (const [name, [sql, values]] of Object.entries(inner)) {
    innerPlans[name] = await admin
      .query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, TIMING, SUMMARY) ${sql}`, values)
      .then((r) => r.rows.map((row) => row['QUERY PLAN']))
      .catch((e: unknown) => [`EXPLAIN failed: ${String(e)}`])
  }
  const split = {
    raw: await latencySplit(url, (u) => rawInsert(u, 1), quick ? 200 : 500),
    ours: await latencySplit(url, (u) => ours(u, 1, { migrate: false }), quick ? 200 : 500),
  }
  await admin.end()
  diagnosis.explainAppend = oursPlan
  diagnosis.explainRawInsert = rawPlan
  diagnosis.explainInner = innerPlans
  diagnosis.latencySplit = split

  console.log(`\nWhere the time of one sequential append goes (mean ms per append, new stream, 1 client):`)
  for (const [label, s] of Object.entries(split)) {
    console.log(
      `  ${pad(label, 5)} ${s.durableMs.toFixed(3)} ms durable = ${s.withoutFlushWaitMs.toFixed(3)} ms without waiting for the WAL flush (round trip + execution) + ${(s.durableMs - s.withoutFlushWaitMs).toFixed(3)} ms commit flush`,
    )
  }
  const pick = (plan: string[]) =>
    plan
      .filter((l) => /Execution Time|Planning Time|WAL:|Buffers:|Scan|Insert|Result/.test(l))
      .map((l) => `    ${l.trim()}`)
  console.log('  EXPLAIN (ANALYZE, BUFFERS, WAL) of one append (rolled back):')
  for (const l of pick(oursPlan)) console.log(l)
  console.log('  EXPLAIN (ANALYZE, BUFFERS, WAL) of one raw INSERT (rolled back):')
  for (const l of pick(rawPlan)) console.log(l)
  for (const [name, plan] of Object.entries(innerPlans)) {
    console.log(`  inside the append, ${name}:`)
    for (const l of pick(plan)) console.log(l)
  }
  const execMs = (plan: string[]) =>
    Number(/Execution Time: ([\d.]+)/.exec(plan.join('\n'))?.[1] ?? Number.NaN)
  const walOf = (label: string) => figures[primary]?.['1']?.[label]?.walBytesPerAppend ?? Number.NaN
  const why = [
    `server execution of one append ${execMs(oursPlan).toFixed(3)} ms vs ${execMs(rawPlan).toFixed(3)} ms for the raw INSERT (EXPLAIN ANALYZE; the append also takes the stream lock, probes (stream_id, version) for the version and last writer and event_id for idempotency, and writes three unique index entries: position, (stream_id, version), event_id)`,
    `WAL per append ${fmt(walOf('@referrals/postgres'))} bytes vs ${fmt(walOf('raw INSERT'))} for the raw INSERT (pg_current_wal_lsn diffs, commit record included)`,
    `round trips per append: ours ${(figures[primary]?.['1']?.['@referrals/postgres']?.roundTripsPerAppend ?? Number.NaN).toFixed(1)}, raw ${(figures[primary]?.['1']?.['raw INSERT']?.roundTripsPerAppend ?? Number.NaN).toFixed(1)}, emmett ${(figures[primary]?.['1']?.['emmett-postgresql']?.roundTripsPerAppend ?? Number.NaN).toFixed(1)}`,
    `sequential append ${split.ours.durableMs.toFixed(3)} ms vs ${split.raw.durableMs.toFixed(3)} ms raw; without the flush wait ${split.ours.withoutFlushWaitMs.toFixed(3)} ms vs ${split.raw.withoutFlushWaitMs.toFixed(3)} ms`,
    `with 16 clients the raw INSERT itself scales ${(scaling[primary]?.raw ?? Number.NaN).toFixed(2)}x: the 16-client figures are bound by CPU (server and benchmark share ${availableParallelism()} cores), where every microsecond of append work counts, not by the flush`,
  ]
  diagnosis.why = why
  if (targets.some((t) => !t.met)) {
    console.log('\nWhy a target is not met:')
    for (const line of why) console.log(`  - ${line}`)
  }
  return { figures, ratios, scaling, targets, diagnosis }
}
