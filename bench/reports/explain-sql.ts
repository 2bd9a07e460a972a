/**
 * The SQL of each fact report over N random facts rows, with EXPLAIN ANALYZE (a probe for tuning
 * referral-facts-report.ts): npx tsx bench/reports/explain-sql.ts [--rows 20000]
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
