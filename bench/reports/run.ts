/**
 * Reports at scale (issue 14, "Scale"): writes a synthetic year of referral histories into
 * PostgreSQL in bulk, then measures (1) the referral-facts projection's rebuild from the event
 * store in events/s with RSS at 25/50/100 % and (2) p50/p99 of each report route through the real
 * application. A benchmark: it prints and writes figures, it asserts nothing.
 *
 *   npx tsx bench/reports/run.ts --quick            # 20,000 referrals
 *   npx tsx bench/reports/run.ts --referrals 100000
 *
 * How the history is made (see bench/reports/README.md): the real engine writes the demo dataset
 * and its made-up weeks of referrals (`seedDemoHistory`: sent, routed, delivered, declined and
 * re-routed, accepted, scheduled, completed, no-shows, unassigned). Those stored referral streams
 * are the templates; each synthetic referral is a copy of one template with its ids, specialist,
 * region and times changed, inserted with multi-row INSERTs straight into `<schema>.events` and
 * `<schema>.streams`, at global positions built like `append_events` builds them.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import os, { tmpdir } from 'node:os'
import path from 'node:path'
import {
  FACT_REPORTS,
  FACTS_IGNORED_EVENT_TYPES,
  factReport,
  type Instant,
  type PracticeId,
  REDACTED,
} from '@referrals/core'
import { buildApp } from '../../packages/http/src/app.js'
import { issueDevToken } from '../../packages/http/src/auth.js'
import { loadConfig } from '../../packages/http/src/config.js'
import { DEMO, seedDemo } from '../../packages/http/src/demo.js'
import { seedDemoHistory, settableClock } from '../../packages/http/src/demo-history.js'
import { DEFAULT_GROUP_BY } from '../../packages/http/src/routes/report-data.js'
import { registerResourceRoutes } from '../../packages/http/src/routes/resources.js'
import { openRuntime, stopServer, systemClock } from '../../packages/http/src/server.js'

const POSITION_TX_SHIFT = 16n // as in packages/adapters/postgres/src/migrations.ts
const PER_TX = 60_000 // < 2^16 events per transaction
const PER_INSERT = 5_000
const YEAR_MS = 365 * 86_400_000
const START = Date.parse('2026-01-01T00:00:00Z')
const ROUTES = ['funnel', 'timings', 'wait-times', 'fairness', 'attribution'] as const
const TARGET_EVENTS_PER_S = 100_000
const TARGET_P99_MS = 200

const argv = process.argv.slice(2)
const flag = (name: string) => argv.indexOf(`--${name}`)
const quick = flag('quick') >= 0
const referralsArg = flag('referrals') >= 0 ? Number(argv[flag('referrals') + 1]) : undefined
const N = referralsArg ?? (quick ? 20_000 : 1_000_000)
if (!Number.isSafeInteger(N) || N < 1) throw new Error('--referrals takes a positive integer')
const SAMPLES = Number(argv[flag('samples') + 1] ?? (flag('samples') >= 0 ? 0 : 20)) || 20
const profile = flag('profile') >= 0
const suffix = quick ? '-quick' : referralsArg !== undefined && N !== 1_000_000 ? `-${N}` : ''

const mb = () => Math.round(process.memoryUsage().rss / 1048576)
const log = (s: string) => process.stdout.write(`${s}\n`)
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN
}

const loadStart = os.loadavg()
const dataDir = mkdtempSync(path.join(tmpdir(), 'bench-reports-'))
const env = { ...process.env }
if (env.DATABASE_URL === undefined) env.REFERRALS_DATA_DIR = dataDir
env.LOG_LEVEL ??= 'warn' // one request-log line per measured request would be noise here
const config = await loadConfig(env, () => undefined)
const clock = settableClock(systemClock)
const runtime = await openRuntime(config, { clock })
const pool = runtime.pool
const facts = runtime.referralFacts
if (pool === undefined || facts === undefined) throw new Error('the reports benchmark needs PostgreSQL')

// 1. Templates: the demo dataset and its history, written by the engine.
const t0 = Date.now()
await seedDemo(runtime.engine)
const templateEnd = new Date(START + 7 * 7 * 86_400_000).toISOString() as Instant
const seeded = await seedDemoHistory(runtime.engine, clock, { end: templateEnd, weeks: 6 })
clock.release()
const schemaRow = await pool.query<{ s: string }>(
  `SELECT table_schema AS s FROM information_schema.columns
   WHERE table_name = 'events' AND column_name = 'global_position' LIMIT 1`,
)
const schema = `"${schemaRow.rows[0]?.s}"`
interface Row {
  stream_id: string
  version: number
  event_id: string
  type: string
  schema_version: number
  data: string
  metadata: string
}
const rows = await pool.query<Row>(
  `SELECT stream_id, version, event_id, type, schema_version, data::text AS data, metadata::text AS metadata
   FROM ${schema}.events WHERE stream_id ^@ 'referral-' ORDER BY stream_id, version`,
)
// Sealed PHI is bound to its event and stream id (AES-GCM associated data), so a copy cannot carry
// its template's ciphertext: copies carry PHI as `{ redacted: true }`, the form the service reads
// for an erased patient (crypto-shredding). The facts projection reads no PHI.
let redactedPhi = 0
for (const r of rows.rows) {
  const data = JSON.parse(r.data) as { phi?: unknown }
  if (typeof data.phi === 'object' && data.phi !== null && 'sealed' in data.phi) {
    r.data = JSON.stringify({ ...data, phi: REDACTED })
    redactedPhi++
  }
}
const templates = new Map<string, Row[]>()
for (const r of rows.rows) templates.set(r.stream_id, [...(templates.get(r.stream_id) ?? []), r])
const shapes = [...templates.values()]
const eventsPerReferral = rows.rows.length / shapes.length
log(
  `templates: ${shapes.length} referral streams (${rows.rows.length} events) from seedDemoHistory in ${Date.now() - t0} ms`,
)

// 2. Synthetic network: 4 demo specialists × 250 = 1,000 specialists, 2 regions × 50 = 100 regions.
const SPECIALIST_COPIES = 250
const REGION_COPIES = 50
const specialistIds = DEMO.specialists.map((s) => s.practiceId)
const specialistRe = new RegExp(`"(${specialistIds.join('|')})"`, 'g')
const regionRe = /"(north|south)"/g
const instantRe = /"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z)"/g
const templateFirst = Math.min(
  ...shapes.map((s) => Date.parse(JSON.parse(s[0]?.metadata ?? '{}').occurredAt ?? templateEnd)),
)

const cloneOf = (shape: Row[], i: number) => {
  const templateStream = shape[0]?.stream_id as string
  const templateId = templateStream.slice('referral-'.length)
  const newId = `${templateId.slice(0, 24)}${i.toString(16).padStart(12, '0')}`
  // Spread the referrals over the year; each keeps its template's internal timings.
  const shift = START + Math.floor((i / N) * YEAR_MS) - templateFirst - (templateFirst % 1000) * 0
  const k = i % SPECIALIST_COPIES
  const region = i % REGION_COPIES
  const change = (text: string) =>
    text
      .split(templateId)
      .join(newId)
      .replace(specialistRe, (_m, id: string) => `"${id}-${k}"`)
      .replace(regionRe, (_m, id: string) => `"${id}-${region}"`)
      .replace(instantRe, (_m, at: string) => `"${new Date(Date.parse(at) + shift).toISOString()}"`)
  return shape.map((e) => ({
    stream_id: `referral-${newId}`,
    version: e.version,
    event_id: `${e.event_id.slice(0, 24)}${i.toString(16).padStart(8, '0')}${e.version.toString(16).padStart(4, '0')}`,
    type: e.type,
    schema_version: e.schema_version,
    data: change(e.data),
    metadata: change(e.metadata),
  }))
}

const g0 = Date.now()
let written = 0
let next = 0
while (next < N) {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const xid = BigInt(
      (await client.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]?.x as string,
    )
    let ordinal = 0
    let batch: ReturnType<typeof cloneOf> = []
    const streams: { id: string; version: number }[] = []
    const flush = async () => {
      if (batch.length === 0) return
      const positions = batch.map(() => ((xid << POSITION_TX_SHIFT) + BigInt(++ordinal)).toString())
      await client.query(
        `INSERT INTO ${schema}.events (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
         SELECT p, $2::text::xid8, s, v, e, t, sv, d::json, m::json
         FROM unnest($1::bigint[], $3::text[], $4::int[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[]) AS u(p, s, v, e, t, sv, d, m)`,
        [
          positions,
          xid.toString(),
          batch.map((e) => e.stream_id),
          batch.map((e) => e.version),
          batch.map((e) => e.event_id),
          batch.map((e) => e.type),
          batch.map((e) => e.schema_version),
          batch.map((e) => e.data),
          batch.map((e) => e.metadata),
        ],
      )
      written += batch.length
      batch = []
    }
    while (next < N && ordinal + batch.length + 64 < PER_TX) {
      const clone = cloneOf(shapes[next % shapes.length] as Row[], next)
      streams.push({ id: clone[0]?.stream_id as string, version: clone.length })
      batch.push(...clone)
      next++
      if (batch.length >= PER_INSERT) await flush()
    }
    await flush()
    await client.query(
      `INSERT INTO ${schema}.streams (stream_id, version) SELECT * FROM unnest($1::text[], $2::int[])`,
      [streams.map((s) => s.id), streams.map((s) => s.version)],
    )
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK')
    throw error
  } finally {
    client.release()
  }
  process.stdout.write(`\r  generated ${next.toLocaleString('en')} / ${N.toLocaleString('en')} referrals`)
}
const generationS = (Date.now() - g0) / 1000
log(
  `\ngenerated ${N.toLocaleString('en')} referrals, ${written.toLocaleString('en')} events in ${generationS.toFixed(1)} s`,
)

// 3. Projection rebuild, RSS at 25/50/100 % of the referral events.
const totalEvents = Number(
  (
    await pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${schema}.events WHERE split_part(stream_id, '-', 1) = 'referral'`,
    )
  ).rows[0]?.n,
)
const rss: { at: number; seconds: number; rssMb: number }[] = []
const marks = [25, 50]
const r0 = Date.now()
// The rebuild is one transaction (its checkpoint moves at the commit): progress comes from its
// `onProgress` callback, after each page.
let waits = { readWaitMs: 0, insertWaitMs: 0 }
const onProgress = (p: {
  readonly events: number
  readonly total: number
  readonly readWaitMs: number
  readonly insertWaitMs: number
}) => {
  waits = { readWaitMs: p.readWaitMs, insertWaitMs: p.insertWaitMs }
  while (marks[0] !== undefined && p.events * 100 >= marks[0] * p.total) {
    const at = marks.shift() as number
    rss.push({ at, seconds: (Date.now() - r0) / 1000, rssMb: mb() })
    log(`  rebuild ${at} %: ${((Date.now() - r0) / 1000).toFixed(1)} s, RSS ${mb()} MB`)
  }
}
log(
  `rebuilding referral_facts from ${totalEvents.toLocaleString('en')} referral events (RSS before ${mb()} MB)…`,
)
const session = profile ? new Session() : undefined
if (session !== undefined) {
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
}
const cpu0 = process.cpuUsage()
await facts.rebuild({ onProgress })
const rebuildCpu = process.cpuUsage(cpu0)
const rebuildS = (Date.now() - r0) / 1000
const rebuildProfile =
  session === undefined ? undefined : summarizeProfile((await session.post('Profiler.stop')).profile)
session?.disconnect()
rss.push({ at: 100, seconds: rebuildS, rssMb: mb() })
const eventsPerS = Math.round(totalEvents / rebuildS)
// Counted, less noisy than the wall time: this process's CPU per event (PostgreSQL's is not in it).
const cpuUsPerEvent = (rebuildCpu.user + rebuildCpu.system) / totalEvents
log(
  `  rebuild 100 %: ${rebuildS.toFixed(1)} s, RSS ${mb()} MB — ${eventsPerS.toLocaleString('en')} events/s; process CPU ${cpuUsPerEvent.toFixed(2)} µs per event; waited ${waits.readWaitMs.toFixed(0)} ms for pages, ${waits.insertWaitMs.toFixed(0)} ms for inserts`,
)
if (flag('rebuild-only') >= 0) {
  // Repeat the rebuild over the same history (figures under a moving load), then stop.
  for (let i = 1; i < (Number(argv[flag('rebuild-only') + 1]) || 1); i++) {
    const w0 = Date.now()
    const c0 = process.cpuUsage()
    await facts.rebuild({ onProgress })
    const c = process.cpuUsage(c0)
    const s = (Date.now() - w0) / 1000
    log(
      `  rebuild again: ${s.toFixed(1)} s — ${Math.round(totalEvents / s).toLocaleString('en')} events/s; process CPU ${((c.user + c.system) / totalEvents).toFixed(2)} µs per event; waited ${waits.readWaitMs.toFixed(0)} ms for pages, ${waits.insertWaitMs.toFixed(0)} ms for inserts; load ${os.loadavg()[0]?.toFixed(1)}`,
    )
  }
  // What PostgreSQL spends on one page of the rebuild (the query of referral-facts-rebuild.ts).
  const pagePlan = await pool.query<{ 'QUERY PLAN': string }>(
    `EXPLAIN (ANALYZE, BUFFERS) SELECT stream_id, version, type, schema_version,
            CASE WHEN type = ANY($1::text[]) THEN NULL ELSE data END AS data, metadata::text AS metadata
     FROM ${schema}.events
     WHERE (stream_id, version) > ('', 0) AND split_part(stream_id, '-', 1) = 'referral'
       AND global_position < 9223372036854775807
     ORDER BY stream_id, version LIMIT 20000`,
    [FACTS_IGNORED_EVENT_TYPES],
  )
  for (const r of pagePlan.rows) log(`  ${r['QUERY PLAN']}`)
  if (process.env.VARIANTS) {
    for (const sel of [
      'stream_id, version',
      'stream_id, version, type, schema_version',
      'stream_id, version, type, schema_version, data',
      "stream_id, version, type, schema_version, metadata->>'occurredAt'",
      'stream_id, version, type, schema_version, metadata',
      "stream_id, version, type, schema_version, data, metadata->>'occurredAt'",
      'stream_id, version, type, schema_version, data, metadata::text',
    ]) {
      for (let k = 0; k < 2; k++) {
        const r = await pool.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (ANALYZE) SELECT ${sel} FROM ${schema}.events
           WHERE (stream_id, version) > ('', 0) AND split_part(stream_id, '-', 1) = 'referral'
           ORDER BY stream_id, version LIMIT 20000`,
        )
        log(`  ${sel}: ${r.rows.at(-1)?.['QUERY PLAN']}`)
      }
    }
  }
  await runtime.close()
  process.exit(0)
}
const rollupRows = Number(
  (
    await pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${schema}.referral_facts_monthly WHERE n > 0`,
    )
  ).rows[0]?.n,
)
const factRows = Number(
  (await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${schema}.referral_facts`)).rows[0]?.n,
)

// Fresh statistics for the planner (autovacuum would get there; a benchmark should not wait).
await pool.query(`ANALYZE ${schema}.referral_facts, ${schema}.referral_facts_durations`)

// 4. Report routes through the real application, over one year, as the referring clinic.
const app = await buildApp({
  store: runtime.store,
  config,
  resolveActor: (userId, roles) => runtime.engine.directory.resolveActor(userId, roles),
  idempotencyStore: runtime.idempotencyStore,
  registerRoutes: registerResourceRoutes({ engine: runtime.engine, routing: runtime.routing }),
})
await app.ready()
const token = await issueDevToken(config, { userId: DEMO.clinic.owner }, { ttlSeconds: 3600 })
const period = 'from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z'
const routes: {
  route: string
  status: number
  bytes: number
  p50: number
  p99: number
  max: number
  samples: number
}[] = []
for (const route of ROUTES) {
  const url = `/reports/${route}?practiceId=${DEMO.clinic.practiceId}&${period}`
  const times: number[] = []
  let status = 0
  let bytes = 0
  for (let i = 0; i <= SAMPLES; i++) {
    const s = performance.now()
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
    const ms = performance.now() - s
    status = res.statusCode
    bytes = res.body.length
    if (i > 0) times.push(ms) // the first is a warm-up
  }
  const row = {
    route: `/reports/${route}`,
    status,
    bytes,
    p50: pct(times, 50),
    p99: pct(times, 99),
    max: Math.max(...times),
    samples: times.length,
  }
  routes.push(row)
  log(
    `  ${row.route}: HTTP ${status}, ${bytes} B, p50 ${row.p50.toFixed(0)} ms, p99 ${row.p99.toFixed(0)} ms`,
  )
}
// The same fact reports, in-process, both ways at the same moment (the load on the shared machine
// moves the absolute figures; the ratio is what the SQL aggregation changed): the core's
// `factReport` over the rows `facts` loads (the path before, and the in-memory stores' path)
// against the read model's SQL `report`.
const compare: { report: string; nodeP50: number; sqlP50: number; same: boolean }[] = []
// `--no-compare` skips it (at 1,000,000 referrals the Node path takes ~20 s per request).
for (const report of flag('no-compare') >= 0 ? [] : FACT_REPORTS) {
  const q = {
    sentFrom: '2026-01-01T00:00:00Z' as Instant,
    sentTo: '2027-01-01T00:00:00Z' as Instant,
    practiceId: DEMO.clinic.practiceId as PracticeId,
  }
  const options = {
    report,
    now: clock.now(),
    groupBy: DEFAULT_GROUP_BY[report],
    filters: {},
    viewer: { practiceIds: [DEMO.clinic.practiceId as PracticeId] },
    threshold: 5,
  }
  const node: number[] = []
  const sql: number[] = []
  let same = true
  for (let i = 0; i < Math.max(5, Math.floor(SAMPLES / 2)); i++) {
    let s = performance.now()
    const a = factReport(await facts.facts(q), options)
    node.push(performance.now() - s)
    s = performance.now()
    const b = await facts.report(q, options)
    sql.push(performance.now() - s)
    same &&= JSON.stringify(a) === JSON.stringify(b)
  }
  compare.push({ report, nodeP50: pct(node, 50), sqlP50: pct(sql, 50), same })
  log(
    `  ${report}: in process ${pct(node, 50).toFixed(0)} ms, SQL ${pct(sql, 50).toFixed(0)} ms (p50), same cells: ${same}`,
  )
}

// What every request pays before its report: resolving the caller (the practice directory's
// refresh, an in-memory catch-up over the `practice-` streams).
const actorTimes: number[] = []
for (let i = 0; i <= 10; i++) {
  const s = performance.now()
  await runtime.engine.directory.resolveActor(DEMO.clinic.owner as never, [])
  if (i > 0) actorTimes.push(performance.now() - s)
}
const actorP50 = pct(actorTimes, 50)
log(`  resolveActor (directory refresh): p50 ${actorP50.toFixed(0)} ms`)

const explain = await pool.query<{ 'QUERY PLAN': string }>(
  `EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM ${schema}.referral_facts
   WHERE sent_at COLLATE "C" >= '2026-01-01T00:00:00Z' AND sent_at COLLATE "C" < '2027-01-01T00:00:00Z'
     AND (sender_practice_id = 'demo-clinic' OR receiving_practice_id = 'demo-clinic')
   ORDER BY sent_at COLLATE "C", referral_id COLLATE "C"`,
)
const plan = explain.rows.map((r) => r['QUERY PLAN'])

// 5. Results.
if (rebuildProfile !== undefined) {
  log('\nrebuild CPU profile (self time):')
  for (const line of rebuildProfile) log(`  ${line}`)
}
const rebuildMet = eventsPerS >= TARGET_EVENTS_PER_S
const rssGrowth = (rss[rss.length - 1]?.rssMb ?? 0) - (rss[0]?.rssMb ?? 0)
const routesMet = routes.every((r) => r.p99 <= TARGET_P99_MS)
const result = {
  referrals: N,
  events: written,
  referralEvents: totalEvents,
  factRows,
  rollupRows,
  templates: {
    streams: shapes.length,
    events: rows.rows.length,
    eventsPerReferral,
    demoHistoryReferrals: seeded.referrals,
    eventsWithSealedPhiRedacted: redactedPhi,
  },
  network: { specialists: specialistIds.length * SPECIALIST_COPIES, regions: 2 * REGION_COPIES },
  generationSeconds: generationS,
  rebuild: {
    seconds: rebuildS,
    eventsPerSecond: eventsPerS,
    processCpuMicrosPerEvent: cpuUsPerEvent,
    ...waits,
    rss,
    target: TARGET_EVENTS_PER_S,
    met: rebuildMet,
  },
  routes: { period, samples: SAMPLES, rows: routes, targetP99Ms: TARGET_P99_MS, met: routesMet },
  factsQueryPlan: plan,
  nodeVersusSql: compare,
  resolveActorP50Ms: actorP50,
  ...(rebuildProfile === undefined ? {} : { rebuildProfile }),
  machine: {
    cpus: os.cpus().length,
    node: process.version,
    loadAverage: { start: loadStart, end: os.loadavg() },
  },
}
const routeGapText = [
  'In the way: the fact routes aggregate in SQL (packages/adapters/postgres/src/referral-facts-report.ts;',
  `in process above, p50 ${compare.map((c) => `${c.report} ${c.sqlP50.toFixed(0)} ms`).join(', ') || 'not measured (--no-compare)'}),`,
  'timings and wait-times: one statement that reads every row of the period once from the narrow durations table (migration 8, referral-facts-durations.ts), so they grow linearly with the rows',
  "(timings: three `percentile_disc` sorts of the period's durations; wait-times: one sort by pool and receiving practice, `percentile_disc` per specialist, ~1,000 specialist rows);",
  `funnel and attribution read the whole months from the monthly rollup (${rollupRows.toLocaleString('en')} rows for ${factRows.toLocaleString('en')} facts rows here; referral-facts-rollup.ts) and the partial months from the facts.`,
  `Resolving the caller takes p50 ${actorP50.toFixed(0)} ms (the directory's category read, migration 5).`,
  'Bounding the percentiles needs exact per-cell value lists or a result cache keyed by the checkpoint — not built.',
  "Then the machine's load (Noise). The plan of the rows a fact report scans:",
].join(' ')
const md = [
  `# Reports at scale${quick ? ' (quick)' : ''}`,
  '',
  `${N.toLocaleString('en')} synthetic referrals (${written.toLocaleString('en')} events, ${eventsPerReferral.toFixed(1)} per referral) over 2026, 1,000 specialist ids, 100 regions; generated in ${generationS.toFixed(1)} s. Command: \`npx tsx bench/reports/run.ts ${argv.join(' ')}\`.`,
  '',
  '## Projection rebuild (referral_facts)',
  '',
  '| progress | elapsed (s) | RSS (MB) |',
  '|---|---|---|',
  ...rss.map((r) => `| ${r.at} % | ${r.seconds.toFixed(1)} | ${r.rssMb} |`),
  '',
  `**${eventsPerS.toLocaleString('en')} events/s** (target ≥ ${TARGET_EVENTS_PER_S.toLocaleString('en')}): **${rebuildMet ? 'MET' : 'NOT MET'}**; RSS grew ${rssGrowth} MB from 25 % to 100 %.`,
  ...(rebuildMet
    ? []
    : [
        '',
        `In the way (counted in this run: this process spent ${cpuUsPerEvent.toFixed(1)} µs of CPU per event, and the fold waited ${waits.readWaitMs.toFixed(0)} ms for pages and ${waits.insertWaitMs.toFixed(0)} ms for inserts of ${(rebuildS * 1000).toFixed(0)} ms): the rebuild reads in stream order in one transaction (referral-facts-rebuild.ts), so each row is written once, but 100,000 events/s needs ≤ 10 µs per event in this process (JSON.parse of each event's data by pg, the Instant checks of the narrow decoder, the fold's object spreads, GC) *and* ≤ 10 µs per event of PostgreSQL for the page reads (\`--rebuild-only\` prints the page's plan; the metadata is read as text, occurredAt taken in the process; the index scan by (stream_id, version) fetches one heap row per event) and the insert (secondary indexes dropped during the rebuild and built at the end), each on its own core; here both share 2 cores with other sessions. Extrapolated to 1,000,000 referrals (~4.8 M events) at this rate: ${Math.round(4_800_000 / eventsPerS / 60)} min.`,
        ...(rebuildProfile === undefined ? [] : ['', '```', ...rebuildProfile, '```']),
      ]),
  '',
  `## Report routes (${period}, as the referring clinic, ${SAMPLES} requests each after a warm-up, app.inject)`,
  '',
  `| route | HTTP | body (B) | p50 (ms) | p99 (ms) | p99 ≤ ${TARGET_P99_MS} ms |`,
  '|---|---|---|---|---|---|',
  ...routes.map(
    (r) =>
      `| ${r.route} | ${r.status} | ${r.bytes} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.p99 <= TARGET_P99_MS ? 'MET' : 'NOT MET'} |`,
  ),
  '',
  `Noise: ${os.cpus().length} cores shared with other sessions (load average ${loadStart[0]?.toFixed(1)} at the start, ${os.loadavg()[0]?.toFixed(1)} at the end); the process and PostgreSQL share them too, so the figures vary from run to run.`,
  '',
  'The fact reports in process, both ways at the same moment (p50, same query as the routes, without HTTP): the core computing over every loaded facts row (before) against the aggregation in SQL (now):',
  '',
  '| report | rows loaded + computed in Node (ms) | SQL aggregation (ms) | same cells |',
  '|---|---|---|---|',
  ...compare.map(
    (c) => `| ${c.report} | ${c.nodeP50.toFixed(0)} | ${c.sqlP50.toFixed(0)} | ${c.same ? 'yes' : 'NO'} |`,
  ),
  '',
  `p99 target ≤ ${TARGET_P99_MS} ms: **${routesMet ? 'MET' : 'NOT MET'}**${
    routesMet
      ? ''
      : ` (${routes
          .filter((r) => r.p99 > TARGET_P99_MS)
          .map((r) => r.route)
          .join(', ')})`
  }.`,
  ...(routesMet ? [] : ['', routeGapText, '', '```', ...plan, '```']),
  '',
]
mkdirSync('bench/results', { recursive: true })
writeFileSync(`bench/results/reports-scale${suffix}.json`, `${JSON.stringify(result, null, 2)}\n`)
writeFileSync(`bench/results/reports-scale${suffix}.md`, md.join('\n'))
log(`\n${md.join('\n')}`)
log(`wrote bench/results/reports-scale${suffix}.{json,md}`)
await stopServer(app, runtime)
process.exit(0)

/** Self time of the rebuild by frame and by package, the top entries, as text lines (`--profile`). */
function summarizeProfile(p: {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples?: number[] | undefined
  timeDeltas?: number[] | undefined
}): string[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const frames = new Map<string, number>()
  const packages = new Map<string, number>()
  let total = 0
  const deltas = p.timeDeltas ?? []
  for (const [i, id] of (p.samples ?? []).entries()) {
    const node = byId.get(id)
    const us = deltas[i + 1] ?? 0
    if (node === undefined) continue
    const { functionName, url, lineNumber } = node.callFrame
    const file = url.replace(/^.*\/(node_modules|packages)\//, '$1/')
    const frame = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`
    const pkg =
      url === ''
        ? functionName || '(native)'
        : url.startsWith('node:')
          ? 'node (built-ins)'
          : (file.match(/^node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1] ??
            file.match(/^packages\/((?:adapters\/)?[^/]+\/[^/]+\/[^/]+)/)?.[1] ??
            file)
    frames.set(frame, (frames.get(frame) ?? 0) + us)
    packages.set(pkg, (packages.get(pkg) ?? 0) + us)
    total += us
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(
        ([k, us]) =>
          `${((100 * us) / total).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`,
      )
  return ['by package / directory:', ...top(packages, 15), 'by function:', ...top(frames, 25)]
}
