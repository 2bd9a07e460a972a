/**
 * Experiment: what one single-event append costs beyond one INSERT, variant by variant, in one run
 * on one embedded server. `npx tsx bench/store/append-variants.ts`
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createPostgresEventStore, startEmbeddedPostgres } from '@referrals/postgres'
import pg from 'pg'
import { RAW_INSERT_SQL, RAW_TABLE_DDL } from './raw-insert.js'

const metadata = {
  actor: { kind: 'system', component: 'bench' },
  correlationId: 'corr-bench',
  commandId: 'cmd-bench',
  occurredAt: '2026-01-01T00:00:00.000Z',
}
const ev = (i: number) => ({
  id: globalThis.crypto.randomUUID(),
  type: 'ReferralNoteAdded',
  schemaVersion: 1,
  data: { referralId: `r-${i}`, sequence: i, note: 'x'.repeat(120), tags: ['a', 'b', 'c'] },
  metadata,
})

const plOne = (s: string, lock: boolean) => `
CREATE FUNCTION ${s}.append_one(p_stream_id text, p_expected_kind text, p_expected_version integer,
  p_event_id text, p_type text, p_schema_version integer, p_data json, p_metadata json)
RETURNS TABLE (status text, stream_version integer, last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_xid xid8; v_current integer; v_last_writer xid8; v_dup_stream text; v_dup_version integer; v_dup_pos bigint;
  v_ordinal integer; v_base bigint;
BEGIN
  ${lock ? 'PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));' : ''}
  v_xid := pg_current_xact_id();
  SELECT ev.version, ev.transaction_id INTO v_current, v_last_writer
    FROM ${s}.events ev WHERE ev.stream_id = p_stream_id ORDER BY ev.version DESC LIMIT 1;
  v_current := coalesce(v_current, 0);
  SELECT ev.stream_id, ev.version, ev.global_position INTO v_dup_stream, v_dup_version, v_dup_pos
    FROM ${s}.events ev WHERE ev.event_id = p_event_id;
  IF v_dup_stream = p_stream_id THEN RETURN QUERY SELECT 'idempotent'::text, v_dup_version, v_dup_pos; RETURN; END IF;
  IF v_dup_stream IS NOT NULL THEN RETURN QUERY SELECT 'mismatch'::text, v_current, NULL::bigint; RETURN; END IF;
  IF (p_expected_kind = 'no_stream' AND v_current <> 0)
     OR (p_expected_kind = 'stream_exists' AND v_current = 0)
     OR (p_expected_kind = 'exact' AND v_current <> p_expected_version) THEN
    RETURN QUERY SELECT 'conflict'::text, v_current, NULL::bigint; RETURN;
  END IF;
  IF v_last_writer > v_xid THEN RAISE EXCEPTION 'retry' USING ERRCODE = '40001'; END IF;
  v_ordinal := coalesce(nullif(current_setting('referrals.tx_ordinal', true), '')::integer, 0);
  PERFORM set_config('referrals.tx_ordinal', (v_ordinal + 1)::text, true);
  v_base := (v_xid::text::bigint << 16) + v_ordinal;
  INSERT INTO ${s}.events (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
  VALUES (v_base, v_xid, p_stream_id, v_current + 1, p_event_id, p_type, p_schema_version, p_data, p_metadata);
  RETURN QUERY SELECT 'ok'::text, v_current + 1, v_base;
END
$fn$;`

/** One statement, no function, no lock. */
const sqlOne = (s: string) => `
WITH last AS (
  SELECT ev.version, ev.transaction_id FROM ${s}.events ev WHERE ev.stream_id = $1 ORDER BY ev.version DESC LIMIT 1
), dup AS (
  SELECT ev.stream_id, ev.version, ev.global_position FROM ${s}.events ev WHERE ev.event_id = $4
), cur AS (
  SELECT coalesce((SELECT version FROM last), 0) AS v, (SELECT transaction_id FROM last) AS w,
         (SELECT d.stream_id FROM dup d) AS dup_stream
), verdict AS (
  SELECT CASE
      WHEN cur.dup_stream = $1 THEN 'idempotent'
      WHEN cur.dup_stream IS NOT NULL THEN 'mismatch'
      WHEN ($2 = 'no_stream' AND cur.v <> 0) OR ($2 = 'stream_exists' AND cur.v = 0)
        OR ($2 = 'exact' AND cur.v <> $3) THEN 'conflict'
      ELSE 'ok' END AS status, cur.v, cur.w FROM cur
), x AS (
  SELECT pg_current_xact_id() AS xid FROM verdict WHERE verdict.status = 'ok'
), ins AS (
  INSERT INTO ${s}.events (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
  SELECT x.xid::text::bigint << 16, x.xid, $1, verdict.v + 1, $4, $5, $6, $7, $8 FROM verdict, x
   WHERE verdict.w IS NULL OR verdict.w < x.xid
  RETURNING global_position, version
)
SELECT CASE WHEN verdict.status = 'ok' AND ins.version IS NULL THEN 'retry' ELSE verdict.status END AS status,
       coalesce(ins.version, (SELECT d.version FROM dup d WHERE verdict.status = 'idempotent'), verdict.v) AS stream_version,
       coalesce(ins.global_position, (SELECT d.global_position FROM dup d WHERE verdict.status = 'idempotent')) AS last_position
  FROM verdict LEFT JOIN ins ON true`

/** Optimistic: no probes; the unique indexes refuse a taken version or event id (23505). */
const optimistic = (s: string, setOrdinal: boolean) => `
INSERT INTO ${s}.events (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
SELECT pg_current_xact_id()::text::bigint << 16, pg_current_xact_id(), $1, coalesce($3, 0) + 1, $4, $5, $6, $7, $8
 WHERE coalesce(current_setting('referrals.tx_ordinal', true), '') = ''
   AND ($2 = 'no_stream' OR EXISTS (SELECT 1 FROM ${s}.events ev
         WHERE ev.stream_id = $1 AND ev.version = $3 AND ev.transaction_id < pg_current_xact_id()))
   ${setOrdinal ? "AND set_config('referrals.tx_ordinal', '1', true) = '1'" : ''}
RETURNING 'ok' AS status, version AS stream_version, global_position AS last_position`

interface Variant {
  readonly label: string
  readonly setup: (admin: pg.Pool) => Promise<void>
  readonly run: (client: pg.Pool, stream: string, version: number, i: number) => Promise<void>
}

const scalarParams = (stream: string, version: number, i: number) => {
  const e = ev(i)
  return [
    stream,
    version === 0 ? 'no_stream' : 'exact',
    version === 0 ? null : version,
    e.id,
    e.type,
    1,
    JSON.stringify(e.data),
    JSON.stringify(e.metadata),
  ]
}
const check = (rows: { status: string }[]) => {
  if (rows[0]?.status !== 'ok') throw new Error(`append ${rows[0]?.status}`)
}

const variants = (url: string): Variant[] => {
  const schema = async (name: string, admin: pg.Pool, extra = '') => {
    const st = await createPostgresEventStore({ connectionString: url, schema: name, poolSize: 1 })
    await st.close()
    if (extra !== '') await admin.query(extra)
  }
  return [
    {
      label: 'raw INSERT',
      setup: async (a) => {
        await a.query(RAW_TABLE_DDL)
      },
      run: async (c, stream, _v, i) => {
        const e = ev(i)
        await c.query({
          name: 'raw',
          text: RAW_INSERT_SQL,
          values: [stream, e.id, e.type, JSON.stringify(e.data), JSON.stringify(e.metadata)],
        })
      },
    },
    {
      label: 'current append_events',
      setup: (a) => schema('v_cur', a),
      run: async (c, stream, v, i) => {
        const e = ev(i)
        const json = `[{"id":${JSON.stringify(e.id)},"type":"${e.type}","schemaVersion":1,"data":${JSON.stringify(e.data)},"metadata":${JSON.stringify(e.metadata)}}]`
        const r = await c.query({
          name: 'cur',
          text: 'SELECT status, stream_version, last_position FROM v_cur.append_events($1, $2, $3, $4::json)',
          values: [stream, v === 0 ? 'no_stream' : 'exact', v === 0 ? null : v, json],
        })
        check(r.rows)
      },
    },
    {
      label: 'plpgsql scalar + lock',
      setup: (a) => schema('v_pl', a, plOne('v_pl', true)),
      run: async (c, stream, v, i) => {
        const r = await c.query({
          name: 'pl',
          text: 'SELECT * FROM v_pl.append_one($1,$2,$3,$4,$5,$6,$7,$8)',
          values: scalarParams(stream, v, i),
        })
        check(r.rows)
      },
    },
    {
      label: 'plpgsql scalar no lock',
      setup: (a) => schema('v_pln', a, plOne('v_pln', false)),
      run: async (c, stream, v, i) => {
        const r = await c.query({
          name: 'pln',
          text: 'SELECT * FROM v_pln.append_one($1,$2,$3,$4,$5,$6,$7,$8)',
          values: scalarParams(stream, v, i),
        })
        check(r.rows)
      },
    },
    {
      label: 'one SQL statement',
      setup: (a) => schema('v_sql', a),
      run: async (c, stream, v, i) => {
        const r = await c.query({ name: 'sql', text: sqlOne('v_sql'), values: scalarParams(stream, v, i) })
        check(r.rows)
      },
    },
    {
      label: 'one SQL, no category index',
      setup: (a) => schema('v_nocat', a, 'DROP INDEX v_nocat.events_category_position'),
      run: async (c, stream, v, i) => {
        const r = await c.query({
          name: 'nocat',
          text: sqlOne('v_nocat'),
          values: scalarParams(stream, v, i),
        })
        check(r.rows)
      },
    },
    {
      label: 'optimistic INSERT',
      setup: (a) => schema('v_opt', a),
      run: async (c, stream, v, i) => {
        const r = await c.query({
          name: 'opt',
          text: optimistic('v_opt', false),
          values: scalarParams(stream, v, i),
        })
        check(r.rows)
      },
    },
    {
      label: 'optimistic INSERT + set_config',
      setup: (a) => schema('v_opts', a),
      run: async (c, stream, v, i) => {
        const r = await c.query({
          name: 'opts',
          text: optimistic('v_opts', true),
          values: scalarParams(stream, v, i),
        })
        check(r.rows)
      },
    },
  ]
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

const main = async () => {
  const quick = process.argv.includes('--quick')
  const dir = await mkdtemp(path.join(tmpdir(), 's23-variants-'))
  await chmod(dir, 0o755)
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'c'),
    database: 'bench',
    settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' },
  })
  const url = server.connectionString
  const admin = new pg.Pool({ connectionString: url, max: 2 })
  try {
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
    const vs = variants(url)
    for (const v of vs) await v.setup(admin)
    let run = 0
    for (const clients of [1, 16]) {
      const pool = new pg.Pool({ connectionString: url, max: clients })
      pool.on('error', () => undefined)
      const stats: Record<
        string,
        { rates: number[]; wal: number; n: number; stmts: number; execMs: number }
      > = {}
      const rounds = quick ? 3 : 7
      for (let r = 0; r < rounds; r++) {
        for (const v of [...vs.slice(r % vs.length), ...vs.slice(0, r % vs.length)]) {
          await admin.query('SELECT pg_stat_statements_reset()')
          const before = (await admin.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l
          const tag = `s${(run++).toString(36)}`
          let n = 0
          const deadline = Date.now() + (quick ? 300 : 600)
          const start = process.hrtime.bigint()
          await Promise.all(
            Array.from({ length: clients }, async (_, c) => {
              for (let i = 0; Date.now() < deadline; i++) {
                n++
                await v.run(pool, `cr${tag}-${c}-${i}`, 0, i)
              }
            }),
          )
          const sec = Number(process.hrtime.bigint() - start) / 1e9
          const after = (await admin.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l
          const wal = Number(
            (await admin.query('SELECT pg_wal_lsn_diff($1,$2) AS d', [after, before])).rows[0].d,
          )
          const ss = (
            await admin.query<{ calls: string; toplevel: boolean; ms: number }>(
              `SELECT sum(calls)::text AS calls, toplevel, sum(total_exec_time) AS ms FROM pg_stat_statements
              WHERE query NOT LIKE '%pg_current_wal_lsn%' AND query NOT LIKE '%pg_stat_statements%' GROUP BY toplevel`,
            )
          ).rows
          const st = stats[v.label] ?? { rates: [], wal: 0, n: 0, stmts: 0, execMs: 0 }
          st.rates.push(n / sec)
          st.wal += wal
          st.n += n
          st.stmts += ss.reduce((a, x) => a + Number(x.calls), 0)
          st.execMs += ss.filter((x) => x.toplevel).reduce((a, x) => a + x.ms, 0)
          stats[v.label] = st
        }
      }
      await pool.end()
      const raw = median(stats['raw INSERT']?.rates ?? [])
      console.log(`\n${clients} client(s), new stream, median of ${rounds} interleaved rounds`)
      for (const [label, st] of Object.entries(stats)) {
        const rate = median(st.rates)
        console.log(
          `${label.padEnd(32)} ${rate.toFixed(0).padStart(6)}/s  ${(rate / raw).toFixed(2)}x raw  WAL ${(st.wal / st.n).toFixed(0)} B  stmts ${(st.stmts / st.n).toFixed(2)}  server ${((1000 * st.execMs) / st.n).toFixed(1)} µs`,
        )
      }
    }
  } finally {
    await admin.end()
    await server.stop()
    await rm(dir, { recursive: true, force: true })
  }
}
await main().catch((e: unknown) => {
  console.error('FAILED', e instanceof Error ? e.message : e)
  process.exit(1)
})
