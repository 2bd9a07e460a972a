import {
  decodeFactsEvent,
  evolveReferralFacts,
  FACTS_IGNORED_EVENT_TYPES,
  type Instant,
  REFERRAL_FACT_FIELDS,
  type ReferralFacts,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type pg from 'pg'
import { checkout, PostgresStoreError, toStoreError } from './errors.js'
import { POSITION_TX_SHIFT, quoteSchema } from './migrations.js'
import { FACT_COLUMNS } from './referral-facts-columns.js'
import { durationsFillSql } from './referral-facts-durations.js'
import { rollupFillSql } from './referral-facts-rollup.js'

/** Progress of a rebuild, after each page (the benchmark prints RSS against it). */
export interface FactsRebuildProgress {
  readonly events: number
  readonly total: number
  readonly rows: number
  /** Time the fold waited for pages to arrive, and for the previous page's insert (ms). */
  readonly readWaitMs: number
  readonly insertWaitMs: number
}

interface PageRow {
  readonly stream_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
  /** null for the types the facts ignore: their data is never sent. */
  readonly data: unknown
  /** The whole metadata as its stored JSON text (`occurredAt` is taken from it in the process). */
  readonly metadata: string
}

const OCCURRED_AT_KEY = '"occurredAt"'
const OCCURRED_AT_RE = /"occurredAt":"([^"]*)"/

/** How many objects/arrays are open at `end` in a JSON text without backslashes (strings skipped). */
const depthAt = (text: string, end: number): number => {
  let depth = 0
  let inString = false
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) inString = !inString
    else if (!inString) {
      if (c === 123 || c === 91) depth++
      else if (c === 125 || c === 93) depth--
    }
  }
  return depth
}

/**
 * The metadata's `occurredAt`, from its stored JSON text. PostgreSQL's `metadata->>'occurredAt'`
 * parses the whole `json` text of every row (~3 µs a row, most of a page's read); here a fast
 * path takes the value with one search when the answer cannot differ from a parse: the text has no
 * backslash (so every `"` delimits a string) and `"occurredAt"` occurs once, as a key followed by
 * `:"` at the top level (depth 1). Any other text (escapes, spacing, a second `"occurredAt"`) is
 * parsed with `JSON.parse`: same answer, slower. (A `json` column always holds valid JSON.)
 */
export const occurredAtOf = (metadata: string): string | null => {
  const first = metadata.indexOf(OCCURRED_AT_KEY)
  if (
    first >= 0 &&
    metadata.indexOf('\\') < 0 &&
    metadata.indexOf(OCCURRED_AT_KEY, first + OCCURRED_AT_KEY.length) < 0
  ) {
    const m = OCCURRED_AT_RE.exec(metadata)
    if (m !== null && m.index === first && depthAt(metadata, first) === 1) return m[1] as string
  }
  const parsed: unknown = JSON.parse(metadata)
  if (typeof parsed !== 'object' || parsed === null) return null
  const at = (parsed as { occurredAt?: unknown }).occurredAt
  return typeof at === 'string' ? at : null
}

/**
 * Rebuilds `<schema>.referral_facts` from the log in **stream order**, in one transaction.
 *
 * A facts row depends only on its own referral's events, in their stream order, so instead of
 * replaying the log in global order (where a referral's events are weeks apart and every batch has
 * to read back and upsert the rows it touches), the rebuild reads the referral events ordered by
 * `(stream_id, version)` — the `events_stream_version_key` index, in keyset pages of `pageSize`
 * events — folds each referral's events into its row in memory and writes each row once, with a
 * plain multi-row `INSERT` (one `json_populate_recordset` statement per page). Memory holds one
 * page and the rows folded from it: it does not grow with the history.
 *
 * What is read: the event's type, schema version, its metadata as text (`occurredAtOf` takes
 * `occurredAt` from it) and its data — not for the four types the facts ignore
 * (`FACTS_IGNORED_EVENT_TYPES`), whose data stays in PostgreSQL. The data is decoded with the narrow `decodeFactsEvent` (no PHI is opened: no key, no
 * AES-GCM). The next page is requested before the current one is folded, and the insert of a page
 * is sent without waiting, so PostgreSQL reads and writes while the process folds.
 *
 * Consistency: the transaction first locks the projection's checkpoint row (`FOR UPDATE`: a
 * concurrent batch finishes first, and later ones wait for the rebuild), truncates the table (and
 * the monthly rollup and the durations table, filled again from the new rows at the end), and
 * fixes a horizon — the position below which every transaction has finished — as of that moment;
 * it replays exactly the referral events below it (each statement, in READ COMMITTED, sees all of
 * them: they are committed and never change) and sets the checkpoint to the last of them. Readers
 * of the table see the old rows until it commits, then the new ones; never a half-built table.
 * Any failure rolls everything back (rows and checkpoint as before).
 */
export const rebuildReferralFactsByStream = async (options: {
  readonly pool: pg.Pool
  readonly schema: string
  readonly projectionName: string
  /** Events per page (default 20,000). */
  readonly pageSize?: number
  readonly onProgress?: (progress: FactsRebuildProgress) => void
}): Promise<{ readonly events: number; readonly rows: number }> => {
  const { pool, projectionName } = options
  const s = quoteSchema(options.schema)
  const table = `${s}.referral_facts`
  const rollup = `${s}.referral_facts_monthly`
  const durations = `${s}.referral_facts_durations`
  const pageSize = options.pageSize ?? 20_000
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
    throw new PostgresStoreError({
      _tag: 'InvalidAppend',
      message: 'rebuild: pageSize must be a positive integer',
    })
  }
  const columns = FACT_COLUMNS.join(', ')
  // Fresh statistics (a bulk import or restore leaves none): best effort, as the generic rebuild.
  await pool.query(`ANALYZE ${s}.events`).catch(() => undefined)

  let checkedOut: Awaited<ReturnType<typeof checkout>>
  try {
    checkedOut = await checkout(pool)
  } catch (error) {
    throw new PostgresStoreError(toStoreError(error, 'rebuild referral facts'))
  }
  const { client } = checkedOut
  let broken = false
  const pending: Promise<unknown>[] = []
  try {
    await client.query('BEGIN')
    await client.query(
      `INSERT INTO ${s}.projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`,
      [projectionName],
    )
    await client.query(`SELECT position FROM ${s}.projection_checkpoints WHERE name = $1 FOR UPDATE`, [
      projectionName,
    ])
    await client.query(`TRUNCATE ${table}, ${rollup}, ${durations}`)
    // The secondary indexes are dropped here and built again (sorted, in one pass each) before the
    // commit: inserting ~1 M rows into three random-order indexes costs more than building them.
    // Inside the transaction (DDL is transactional in PostgreSQL): a failure rolls the drop back
    // with everything else; TRUNCATE already holds the table's ACCESS EXCLUSIVE lock, so readers
    // wait for the commit as before. The primary key stays (rows arrive in referral id order).
    const secondary = await client.query<{ name: string; def: string }>(
      `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
       FROM pg_index i
       WHERE i.indrelid = ANY(ARRAY[$1::regclass, $2::regclass]) AND NOT i.indisprimary
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
       ORDER BY 1`,
      [table, durations],
    )
    for (const index of secondary.rows) await client.query(`DROP INDEX ${index.name}`)
    const bounds = await client.query<{ horizon: string; last: string | null; total: string }>(
      `WITH h AS (SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << ${POSITION_TX_SHIFT}) AS horizon)
       SELECT h.horizon::text AS horizon,
              (SELECT max(global_position) FROM ${s}.events
                WHERE split_part(stream_id, '-', 1) = 'referral' AND global_position < h.horizon)::text AS last,
              (SELECT count(*) FROM ${s}.events
                WHERE split_part(stream_id, '-', 1) = 'referral' AND global_position < h.horizon)::text AS total
       FROM h`,
    )
    const horizon = bounds.rows[0]?.horizon ?? '0'
    const last = bounds.rows[0]?.last ?? null
    const total = Number(bounds.rows[0]?.total ?? 0)

    // Pages are read on another connection of the pool, outside the transaction: the events below
    // the horizon are committed and never change, so every statement sees the same ones. The read
    // of page n+1 and the insert of page n (on the transaction's connection) run side by side.
    const readPage = (afterStream: string, afterVersion: number) =>
      pool.query<PageRow>(
        `SELECT stream_id, version, type, schema_version,
                CASE WHEN type = ANY($4::text[]) THEN NULL ELSE data END AS data,
                metadata::text AS metadata
         FROM ${s}.events
         WHERE (stream_id, version) > ($1::text, $2::integer)
           AND split_part(stream_id, '-', 1) = 'referral' AND global_position < $3::bigint
         ORDER BY stream_id, version
         LIMIT $5`,
        [afterStream, afterVersion, horizon, FACTS_IGNORED_EVENT_TYPES, pageSize],
      )
    const track = <A>(p: Promise<A>): Promise<A> => {
      // Sent without waiting; awaited before the next of its kind and before the commit.
      p.catch(() => undefined)
      pending.push(p)
      return p
    }
    let inserting: Promise<unknown> = Promise.resolve()

    let events = 0
    let rows = 0
    let stream: string | null = null
    let facts: ReferralFacts | null = null
    let next = track(readPage('', 0))
    let readWaitMs = 0
    let insertWaitMs = 0
    for (;;) {
      const w0 = performance.now()
      const page = (await next).rows
      readWaitMs += performance.now() - w0
      const tail = page.at(-1)
      const full = page.length === pageSize && tail !== undefined
      if (full) next = track(readPage(tail.stream_id, tail.version))
      const ready: Record<string, unknown>[] = []
      const flush = () => {
        if (facts === null) return
        const row: Record<string, unknown> = {}
        for (let i = 0; i < FACT_COLUMNS.length; i++) {
          row[FACT_COLUMNS[i] as string] = facts[REFERRAL_FACT_FIELDS[i] as keyof ReferralFacts]
        }
        ready.push(row)
        facts = null
      }
      for (const e of page) {
        if (e.stream_id !== stream) {
          flush()
          stream = e.stream_id
        }
        const decoded = decodeFactsEvent({ type: e.type, schemaVersion: e.schema_version, data: e.data })
        if (E.isLeft(decoded)) {
          throw new PostgresStoreError({
            _tag: 'InvalidAppend',
            message: `referral facts rebuild: ${e.stream_id} version ${e.version}: ${decoded.left.message}`,
          })
        }
        if (decoded.right === null) continue
        const at = occurredAtOf(e.metadata)
        if (at === null) {
          throw new PostgresStoreError({
            _tag: 'InvalidAppend',
            message: `referral facts rebuild: ${e.stream_id} version ${e.version} has no occurredAt`,
          })
        }
        facts = evolveReferralFacts(facts, decoded.right, at as Instant)
      }
      // The last referral of a full page may go on in the next one: it is kept and folded further.
      if (!full) flush()
      events += page.length
      if (ready.length > 0) {
        rows += ready.length
        // One statement per page, the rows as one JSON text (serialised natively; 31 array
        // parameters cost more in the client than the insert costs in PostgreSQL).
        const w1 = performance.now()
        await inserting
        insertWaitMs += performance.now() - w1
        inserting = track(
          client.query(
            `INSERT INTO ${table} (${columns})
             SELECT ${columns} FROM json_populate_recordset(NULL::${table}, $1::json)`,
            [JSON.stringify(ready)],
          ),
        )
        // At most the next page and one insert in flight.
        pending.splice(0, pending.length - 2)
      }
      options.onProgress?.({ events, total, rows, readWaitMs, insertWaitMs })
      if (!full) break
    }
    await Promise.all(pending)
    pending.length = 0
    // The narrow durations table of timings and wait-times, from the rebuilt rows (its index,
    // dropped above with the others, is built after it).
    await client.query(durationsFillSql(table, durations))
    if (secondary.rows.length > 0) {
      await client.query(`SET LOCAL maintenance_work_mem = '256MB'`)
      for (const index of secondary.rows) await client.query(index.def)
    }
    // The monthly rollup of the reports, from the rebuilt rows (one GROUP BY).
    await client.query(rollupFillSql(table, rollup))
    if (last !== null) {
      await client.query(
        `UPDATE ${s}.projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1`,
        [projectionName, last],
      )
    } else {
      await client.query(
        `UPDATE ${s}.projection_checkpoints SET position = 0, updated_at = now() WHERE name = $1`,
        [projectionName],
      )
    }
    await client.query('COMMIT')
    return { events, rows }
  } catch (error) {
    await Promise.allSettled(pending)
    await client.query('ROLLBACK').catch(() => {
      broken = true
    })
    if (error instanceof PostgresStoreError) throw error
    throw new PostgresStoreError(toStoreError(error, 'rebuild referral facts'))
  } finally {
    checkedOut.release(broken)
  }
}
