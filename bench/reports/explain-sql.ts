/**
 * The SQL of each fact report over N random facts rows, with EXPLAIN ANALYZE (a probe for tuning
 * referral-facts-report.ts): npx tsx bench/reports/explain-sql.ts [--rows 20000]
 *
 * Or over the database a `run.ts` left behind (its data directory is printed by nothing; it is the
 * newest /tmp/bench-reports-*), with the routes' own options (the year 2026 as the demo clinic,
 * the default groupings, the rollup): times of the SQL alone and of the whole `sqlFactReport` plus
 * `JSON.stringify` of its cells, then EXPLAIN (ANALYZE, BUFFERS):
 *   npx tsx bench/reports/explain-sql.ts --data-dir /tmp/bench-reports-XXXXXX/postgres [--only timings,wait-times]
 */

import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import {
  type FactReportOptions,
  type Instant,
  REFERRAL_FACT_FIELDS,
  referralAggregate,
} from '@referrals/core'
import {
  createPostgresEventStore,
  createPostgresReferralFacts,
  startEmbeddedPostgres,
} from '@referrals/postgres'
import { sqlFactReport } from '../../packages/adapters/postgres/src/referral-facts-report.js'

const argv = process.argv.slice(2)
const dataDirArg = argv.indexOf('--data-dir') >= 0 ? argv[argv.indexOf('--data-dir') + 1] : undefined
if (dataDirArg !== undefined) {
  await explainExisting(dataDirArg)
  process.exit(0)
}
const N = Number(argv[argv.indexOf('--rows') + 1] ?? 0) || 20_000
const pg = await startEmbeddedPostgres({ dataDir: mkdtempSync(path.join(tmpdir(), 'explain-sql-')) })
const store = await createPostgresEventStore({ connectionString: pg.connectionString })
await createPostgresReferralFacts({ store, aggregate: referralAggregate() })
const table = `"${store.schema}".referral_facts`
const snake = (f: string) => f.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
const iso = (ms: number) => new Date(ms).toISOString()
const START = Date.parse('2026-01-01T00:00:00Z')
const cols = REFERRAL_FACT_FIELDS.map(() => [] as unknown[])
for (let i = 0; i < N; i++) {
  const sent = START + Math.floor((i / N) * 365 * 86_400_000)
  const row: Record<string, unknown> = Object.fromEntries(REFERRAL_FACT_FIELDS.map((k) => [k, null]))
  Object.assign(row, {
    referralId: `r-${i}`,
    senderPracticeId: 'demo-clinic',
    receivingPracticeId: `spec-${i % 1000}`,
    regionId: `north-${i % 50}`,
    specialtyId: 'ortho',
    categoryId: 'knee',
    urgency: 'routine',
    route: 'pooled',
    status: 'scheduled',
    sentAt: iso(sent),
    firstDeliveredAt: iso(sent + 60_000),
    deliveredAt: iso(sent + 60_000),
    acceptedAt: iso(sent + 3_600_000 * (1 + (i % 7))),
    scheduledAt: iso(sent + 7_200_000 * (1 + (i % 5))),
    appointmentAt: iso(sent + 86_400_000 * (1 + (i % 30))),
    completedAt: i % 2 ? iso(sent + 90 * 86_400_000) : null,
    deliveryCount: 1,
    declineCount: i % 3,
    expiryCount: 0,
    noShowCount: 0,
    updatedAt: iso(sent),
  })
  for (const [j, k] of REFERRAL_FACT_FIELDS.entries()) cols[j]?.push(row[k])
}
const types = REFERRAL_FACT_FIELDS.map((k) => (/Count$/.test(k) ? 'integer' : 'text'))
await store.pool.query(
  `INSERT INTO ${table} (${REFERRAL_FACT_FIELDS.map(snake).join(', ')}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`,
  cols,
)
await store.pool.query(`ANALYZE ${table}`)
for (const report of ['funnel', 'timings', 'wait-times', 'attribution'] as const) {
  let captured: { text: string; values: unknown[] } | undefined
  const spy = {
    query: async (text: string, values: unknown[]) => {
      captured = { text, values }
      return { rows: [] }
    },
  }
  const options: FactReportOptions = {
    report,
    now: '2026-12-31T00:00:00.000Z' as Instant,
    viewer: { practiceIds: [] },
    threshold: 5,
    groupBy: report === 'wait-times' ? ['pool'] : report === 'attribution' ? ['channel'] : [],
  }
  const q = {
    sentFrom: '2026-01-01T00:00:00Z' as Instant,
    sentTo: '2027-01-01T00:00:00Z' as Instant,
    practiceId: 'demo-clinic' as never,
  }
  await sqlFactReport(spy as never, table, q, options)
  if (captured === undefined) continue
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const t = performance.now()
    await store.pool.query(captured.text, captured.values)
    times.push(performance.now() - t)
  }
  const plan = await store.pool.query(`EXPLAIN (ANALYZE, BUFFERS) ${captured.text}`, captured.values)
  console.log(`\n== ${report}: ${times.map((t) => t.toFixed(0)).join(', ')} ms`)
  console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'))
}
await store.close()
await pg.stop()

/** The report SQL of the routes over an existing bench database (see the header). */
async function explainExisting(dataDir: string): Promise<void> {
  const only = argv.indexOf('--only') >= 0 ? (argv[argv.indexOf('--only') + 1] ?? '').split(',') : undefined
  const server = await startEmbeddedPostgres({ dataDir })
  const { default: pgLib } = await import('pg')
  const pool = new pgLib.Pool({ connectionString: server.connectionString, max: 2 })
  const schemaRow = await pool.query<{ s: string }>(
    `SELECT table_schema AS s FROM information_schema.columns
     WHERE table_name = 'referral_facts' AND column_name = 'sent_at' LIMIT 1`,
  )
  const s = `"${schemaRow.rows[0]?.s}"`
  const table = `${s}.referral_facts`
  const rollup = `${s}.referral_facts_monthly`
  const q = {
    sentFrom: '2026-01-01T00:00:00.000Z' as Instant,
    sentTo: '2027-01-01T00:00:00.000Z' as Instant,
    practiceId: 'demo-clinic' as never,
  }
  const groupBy = { funnel: [], timings: [], 'wait-times': ['pool'], attribution: ['channel'] } as const
  for (const report of ['funnel', 'timings', 'wait-times', 'attribution'] as const) {
    if (only !== undefined && !only.includes(report)) continue
    const options: FactReportOptions = {
      report,
      now: '2026-12-31T00:00:00.000Z' as Instant,
      viewer: { practiceIds: ['demo-clinic' as never] },
      threshold: 5,
      groupBy: groupBy[report],
      filters: {},
    }
    let captured: { text: string; values: unknown[] }[] = []
    const spy = {
      query: async (text: string, values: unknown[]) => {
        captured.push({ text, values })
        return pool.query(text, values)
      },
    }
    const durations = process.env.FACTS_ONLY ? undefined : `${s}.referral_facts_durations`
    const whole: number[] = []
    const sqlOnly: number[] = []
    const json: number[] = []
    let bytes = 0
    let resultRows = 0
    for (let i = 0; i < 6; i++) {
      captured = []
      let t = performance.now()
      const cells = await sqlFactReport(spy as never, table, q, options, rollup, durations)
      const w = performance.now() - t
      t = performance.now()
      const body = JSON.stringify({ cells })
      const j = performance.now() - t
      bytes = body.length
      t = performance.now()
      for (const c of captured) resultRows = (await pool.query(c.text, c.values)).rows.length
      if (i > 0) {
        whole.push(w)
        json.push(j)
        sqlOnly.push(performance.now() - t)
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
    console.log(
      `\n== ${report}: sqlFactReport median ${med(whole).toFixed(0)} ms (${whole.map((x) => x.toFixed(0)).join(', ')}); the same SQL alone ${med(sqlOnly).toFixed(0)} ms (${resultRows} result rows); JSON.stringify ${med(json).toFixed(1)} ms for ${bytes} B`,
    )
    for (const c of captured) {
      const plan = await pool.query(`EXPLAIN (ANALYZE, BUFFERS) ${c.text}`, c.values)
      console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'))
    }
  }
  await pool.end()
  await server.stop()
}
