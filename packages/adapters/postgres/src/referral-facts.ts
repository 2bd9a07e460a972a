import {
  type Aggregate,
  decodeFactsEvent,
  evolveReferralFacts,
  type Instant,
  REFERRAL_FACT_FIELDS,
  type ReferralCommand,
  type ReferralEvent,
  type ReferralFacts,
  type ReferralFactsEvent,
  type ReferralFactsQuery,
  type ReferralFactsReadModel,
  type ReferralState,
  type StoredEvent,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type { PostgresEventStore } from './event-store.js'
import { quoteSchema } from './migrations.js'
import { createPostgresProjection, type PostgresProjection } from './projection.js'
import { FACT_COLUMNS } from './referral-facts-columns.js'
import { refreshDurations } from './referral-facts-durations.js'
import { type FactsRebuildProgress, rebuildReferralFactsByStream } from './referral-facts-rebuild.js'
import { sqlFactReport } from './referral-facts-report.js'
import { applyRollupDelta } from './referral-facts-rollup.js'

/** The projection's name: keys its checkpoint in `<schema>.projection_checkpoints`. */
export const REFERRAL_FACTS_PROJECTION = 'referral_facts_v1'

/**
 * The referral-facts read model of the reports in PostgreSQL: `<schema>.referral_facts` (created by
 * migration 3), one row per referral, the same rows as the in-memory `createReferralFactsIndex`
 * (both fold with `evolveReferralFacts`). Kept by a checkpointed projection (each batch and its
 * checkpoint in one transaction); `rebuild()` truncates the table and replays the log in stream
 * order, in one transaction (`referral-facts-rebuild.ts`). Events are decoded with the core's
 * narrow `decodeFactsEvent` (the fields the facts use; PHI is never opened).
 */
export interface PostgresReferralFacts extends ReferralFactsReadModel {
  readonly projection: PostgresProjection
  readonly rebuild: (options?: {
    readonly onProgress?: (progress: FactsRebuildProgress) => void
  }) => Promise<void>
  /** The fact reports aggregated in SQL (referral-facts-report.ts), equal to the core's `factReport`. */
  readonly report: NonNullable<ReferralFactsReadModel['report']>
}

const COUNT_FIELDS: ReadonlySet<string> = new Set([
  'deliveryCount',
  'declineCount',
  'expiryCount',
  'noShowCount',
])

type Row = Record<string, string | number | null>

const rowOf = (f: ReferralFacts): (string | number | null)[] => REFERRAL_FACT_FIELDS.map((k) => f[k])

const factsOf = (row: Row): ReferralFacts =>
  Object.fromEntries(
    REFERRAL_FACT_FIELDS.map((k, i) => [k, row[FACT_COLUMNS[i] as string] ?? null]),
  ) as unknown as ReferralFacts

export const createPostgresReferralFacts = async (options: {
  readonly store: PostgresEventStore
  /**
   * Kept for the callers' signature; the facts need none of it: events are decoded with
   * `decodeFactsEvent` (the same field codecs as the aggregate's catalog, same upcasters) and PHI is
   * never opened.
   */
  readonly aggregate?: Aggregate<ReferralCommand, ReferralEvent, ReferralState>
  /** Events per page while rebuilding (default 20,000; live catch-up: 500 per transaction). */
  readonly rebuildBatchSize?: number
}): Promise<PostgresReferralFacts> => {
  const { store } = options
  const decode = (stored: StoredEvent): ReferralFactsEvent | null => {
    const d = decodeFactsEvent(stored)
    if (E.isLeft(d)) throw new Error(`referral facts: ${d.left.message}`)
    return d.right
  }
  const table = `${quoteSchema(store.schema)}.referral_facts`
  const rollup = `${quoteSchema(store.schema)}.referral_facts_monthly`
  const durations = `${quoteSchema(store.schema)}.referral_facts_durations`
  const columns = FACT_COLUMNS.join(', ')
  const placeholders = FACT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')
  const unnestParams = REFERRAL_FACT_FIELDS.map(
    (k, i) => `$${i + 1}::${COUNT_FIELDS.has(k) ? 'integer' : 'text'}[]`,
  ).join(', ')
  const updates = FACT_COLUMNS.filter((c) => c !== 'referral_id')
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(', ')

  const projection = await createPostgresProjection(store, {
    name: REFERRAL_FACTS_PROJECTION,
    streamPrefixes: ['referral-'],
    // `rebuildProjection(store, name)` replays in global order through `handleBatch` (correct, slower);
    // the facts' own `rebuild` below reads in stream order.
    rebuildBatchSize: 5_000,
    // The table comes from migration 3; this only checks it is there (and names it for the rebuild).
    // (The generic rebuild truncates both and replays through `handleBatch`, which keeps the rollup.)
    tables: {
      [`${store.schema}.referral_facts`]: `SELECT 1 FROM ${table} LIMIT 0`,
      [`${store.schema}.referral_facts_monthly`]: `SELECT 1 FROM ${rollup} LIMIT 0`,
      [`${store.schema}.referral_facts_durations`]: `SELECT 1 FROM ${durations} LIMIT 0`,
    },
    handle: async (stored, client) => {
      const event = decode(stored)
      if (event === null) return
      const current = await client.query<Row>(`SELECT ${columns} FROM ${table} WHERE referral_id = $1`, [
        event.data.referralId,
      ])
      const before = current.rows[0] === undefined ? null : factsOf(current.rows[0])
      const next = evolveReferralFacts(before, event, stored.metadata.occurredAt)
      if (next === null || next === before) return
      await client.query(
        `INSERT INTO ${table} (${columns}) VALUES (${placeholders})
         ON CONFLICT (referral_id) DO UPDATE SET ${updates}`,
        rowOf(next),
      )
      await applyRollupDelta(client, rollup, [{ before, after: next }])
      await refreshDurations(client, table, durations, [next.referralId])
    },
    // The same fold over a batch: one SELECT of the rows it touches, the events folded in memory in
    // store order, one multi-row upsert of the rows that changed (each referral once).
    handleBatch: async (events, client) => {
      const decoded: { readonly event: ReferralFactsEvent; readonly at: Instant }[] = []
      for (const stored of events) {
        const event = decode(stored)
        if (event !== null) decoded.push({ event, at: stored.metadata.occurredAt })
      }
      if (decoded.length === 0) return
      const ids = [...new Set(decoded.map((d) => d.event.data.referralId))]
      const current = await client.query<Row>(
        `SELECT ${columns} FROM ${table} WHERE referral_id = ANY($1::text[])`,
        [ids],
      )
      const rows = new Map<string, ReferralFacts | null>(ids.map((id) => [id, null]))
      for (const row of current.rows) rows.set(String(row.referral_id), factsOf(row))
      const initial = new Map(rows)
      const changed = new Set<string>()
      for (const { event, at } of decoded) {
        const before = rows.get(event.data.referralId) ?? null
        const next = evolveReferralFacts(before, event, at)
        if (next === null || next === before) continue
        rows.set(event.data.referralId, next)
        changed.add(event.data.referralId)
      }
      if (changed.size === 0) return
      // One statement whatever the batch size: a parameter per column (an array of the batch's
      // values) unnested into rows, instead of a parameter per value (a 1,000-row VALUES list of
      // 31,000 parameters costs more to parse and plan than to write).
      const ready = [...changed].flatMap((id) => {
        const facts = rows.get(id)
        return facts === null || facts === undefined ? [] : [facts]
      })
      await client.query(
        `INSERT INTO ${table} (${columns}) SELECT * FROM unnest(${unnestParams})
         ON CONFLICT (referral_id) DO UPDATE SET ${updates}`,
        REFERRAL_FACT_FIELDS.map((k) => ready.map((f) => f[k])),
      )
      await applyRollupDelta(
        client,
        rollup,
        ready.map((after) => ({ before: initial.get(after.referralId) ?? null, after })),
      )
      await refreshDurations(
        client,
        table,
        durations,
        ready.map((f) => f.referralId),
      )
    },
  })

  const facts = async (q: ReferralFactsQuery): Promise<readonly ReferralFacts[]> => {
    await projection.catchUp()
    const where: string[] = []
    const params: unknown[] = []
    const p = (v: unknown) => {
      params.push(v)
      return `$${params.length}`
    }
    if (q.sentFrom !== undefined) where.push(`sent_at COLLATE "C" >= ${p(q.sentFrom)}`)
    if (q.sentTo !== undefined) where.push(`sent_at COLLATE "C" < ${p(q.sentTo)}`)
    if (q.practiceId !== undefined) {
      const id = p(q.practiceId)
      where.push(`(sender_practice_id = ${id} OR receiving_practice_id = ${id})`)
    }
    const r = await store.pool.query<Row>(
      `SELECT ${columns} FROM ${table} ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
       ORDER BY sent_at COLLATE "C", referral_id COLLATE "C"`,
      params,
    )
    return r.rows.map(factsOf)
  }

  return {
    projection,
    refresh: () => projection.catchUp(),
    rebuild: async (rebuildOptions = {}) => {
      await rebuildReferralFactsByStream({
        pool: store.pool,
        schema: store.schema,
        projectionName: REFERRAL_FACTS_PROJECTION,
        ...(options.rebuildBatchSize === undefined ? {} : { pageSize: options.rebuildBatchSize }),
        ...(rebuildOptions.onProgress === undefined ? {} : { onProgress: rebuildOptions.onProgress }),
      })
    },
    facts,
    report: async (q, options) => {
      await projection.catchUp()
      // The rollup sums what the projection wrote; before its first event (position 0) the facts
      // table is empty for the projection, and whatever is in it was not written by it.
      const useRollup = (await projection.position()) > 0n
      return useRollup
        ? sqlFactReport(store.pool, table, q, options, rollup, durations)
        : sqlFactReport(store.pool, table, q, options)
    },
  }
}
