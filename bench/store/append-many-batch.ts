/**
 * What one routed batch's `appendMany` costs on the server — the pool stream (exact version, one
 * decision event per send) plus N new referral streams (3 events each, the first with a sealed-PHI
 * sized field) as `bench/http` writes them — with `append_events` as migration 2 left it (each
 * field taken with a `->` operator, one JSON parse each) and as migration 7 makes it (the array
 * parsed once, `json_to_recordset`). One embedded PostgreSQL 18 with `pg_stat_statements`
 * (track = all), one client, the two schemas interleaved.
 *
 *   npx tsx --conditions=@referrals/source bench/store/append-many-batch.ts [--quick]
 *
 * Writes bench/results/store-append-many{-quick}.{json,md}.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { type EventId, expected, type NewEvent, type StreamId, unsafeId } from '@referrals/core'
import { createPostgresEventStore, migrate, startEmbeddedPostgres } from '@referrals/postgres'
import * as E from 'fp-ts/lib/Either.js'
import pg from 'pg'

const metadata = {
  actor: {
    kind: 'user',
    userId: 'dr-gp',
    platformRoles: [],
    memberships: [{ practiceId: 'demo-clinic', role: 'owner' }],
  },
  correlationId: 'corr-bench-0000-0000',
  commandId: 'cmd-bench-0000-0000',
  occurredAt: '2026-01-01T00:00:00.000Z',
  integrity: { hash: 'h'.repeat(64), previous: 'p'.repeat(64), algorithm: 'sha256' },
}
const sealed = 'S'.repeat(1600) // the base64 of an AES-GCM sealed PHI object
const ev = (type: string, i: number, phi: boolean): NewEvent => ({
  id: unsafeId<EventId>(globalThis.crypto.randomUUID()),
  type,
  schemaVersion: 1,
  data: {
    referralId: `r-${i}`,
    practiceId: 'ortho-north-a',
    decisionId: `d-${i}`,
    ...(phi ? { phi: sealed } : {}),
  },
  metadata: metadata as never,
})
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

const main = async () => {
  const quick = process.argv.includes('--quick')
  const dir = await mkdtemp(path.join(tmpdir(), 's25-append-many-'))
  await chmod(dir, 0o755)
  const load = [loadavg()[0]]
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'c'),
    database: 'bench',
    settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' },
  })
  const url = server.connectionString
  const admin = new pg.Pool({ connectionString: url, max: 2 })
  const rows: {
    variant: string
    sends: number
    batchesPerSecond: number
    serverUsPerBatch: number
    statementsPerBatch: number
    walBytesPerBatch: number
  }[] = []
  try {
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
    await migrate(admin, { schema: 'before_v5', upTo: 5 })
    const variants = [
      {
        label: 'append_events, a `->` per field (migration 2)',
        store: await createPostgresEventStore({
          connectionString: url,
          schema: 'before_v5',
          migrate: false,
          poolSize: 1,
        }),
      },
      {
        label: 'append_events, json_to_recordset (migration 7)',
        store: await createPostgresEventStore({ connectionString: url, schema: 'after_v7', poolSize: 1 }),
      },
    ]
    for (const sends of [1, 8, 32]) {
      const stats = new Map<string, { rates: number[]; us: number; stmts: number; wal: number; n: number }>()
      const versions = new Map<string, number>()
      const rounds = quick ? 3 : 7
      for (let r = 0; r < rounds; r++) {
        for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
          await admin.query('SELECT pg_stat_statements_reset()')
          const before = (await admin.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l
          const pool = unsafeId<StreamId>(`pool-${sends}`)
          let n = 0
          const deadline = Date.now() + (quick ? 300 : 700)
          const start = process.hrtime.bigint()
          while (Date.now() < deadline) {
            const version = versions.get(v.label) ?? 0
            const requests = [
              {
                streamId: pool,
                expected: version === 0 ? expected.noStream : expected.exact(version),
                events: Array.from({ length: sends }, (_, i) => ev('ReferralRouted', i, false)),
              },
              ...Array.from({ length: sends }, (_, i) => ({
                streamId: unsafeId<StreamId>(`referral-${sends}-${r}-${n}-${i}`),
                expected: expected.noStream,
                events: [
                  ev('ReferralSent', i, true),
                  ev('ReferralOffered', i, false),
                  ev('ReferralDelivered', i, false),
                ],
              })),
            ]
            const written = await v.store.appendMany(requests)()
            if (E.isLeft(written)) throw new Error(written.left.message)
            versions.set(v.label, version + sends)
            n++
          }
          const sec = Number(process.hrtime.bigint() - start) / 1e9
          const after = (await admin.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l
          const wal = Number(
            (await admin.query('SELECT pg_wal_lsn_diff($1,$2) AS d', [after, before])).rows[0].d,
          )
          const ss = (
            await admin.query<{ calls: string; toplevel: boolean; ms: number }>(
              `SELECT sum(calls)::text AS calls, toplevel, sum(total_exec_time) AS ms FROM pg_stat_statements
                WHERE query LIKE '%append_many%' OR NOT toplevel GROUP BY toplevel`,
            )
          ).rows
          const st = stats.get(v.label) ?? { rates: [], us: 0, stmts: 0, wal: 0, n: 0 }
          st.rates.push(n / sec)
          st.us += 1000 * ss.filter((x) => x.toplevel).reduce((a, x) => a + x.ms, 0)
          st.stmts += ss.filter((x) => !x.toplevel).reduce((a, x) => a + Number(x.calls), 0)
          st.wal += wal
          st.n += n
          stats.set(v.label, st)
        }
      }
      for (const [variant, st] of stats)
        rows.push({
          variant,
          sends,
          batchesPerSecond: Math.round(median(st.rates)),
          serverUsPerBatch: Math.round(st.us / st.n),
          statementsPerBatch: Math.round((10 * st.stmts) / st.n) / 10,
          walBytesPerBatch: Math.round(st.wal / st.n),
        })
    }
    for (const v of variants) await v.store.close()
  } finally {
    await admin.end()
    await server.stop()
    await rm(dir, { recursive: true, force: true })
  }
  load.push(loadavg()[0])
  const table =
    '| append_events | sends per batch (streams) | batches/s (1 client, fsync on) | server µs per batch | nested statements per batch | WAL B per batch |\n|---|--:|--:|--:|--:|--:|\n' +
    rows
      .map(
        (r) =>
          `| ${r.variant} | ${r.sends} (${r.sends + 1}) | ${r.batchesPerSecond} | ${r.serverUsPerBatch} | ${r.statementsPerBatch} | ${r.walBytesPerBatch} |`,
      )
      .join('\n')
  const md = `# One routed batch's appendMany on the server\n\n\`npx tsx --conditions=@referrals/source bench/store/append-many-batch.ts${quick ? ' --quick' : ''}\` — ${new Date().toISOString().slice(0, 16)}Z, 1-minute load average ${load.map((l) => l?.toFixed(2)).join(' → ')}; server time (top-level \`append_many\` statement) and nested statements from pg_stat_statements (track = all).\n\n${table}\n`
  console.log(md)
  const out = path.join(import.meta.dirname, '..', 'results', `store-append-many${quick ? '-quick' : ''}`)
  await writeFile(`${out}.json`, `${JSON.stringify({ load, rows }, null, 2)}\n`)
  await writeFile(`${out}.md`, md)
  console.log(`wrote ${out}.{json,md}`)
}

await main()
