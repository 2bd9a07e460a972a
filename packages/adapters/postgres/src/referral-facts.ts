import {
  type Aggregate,
  decodeStored,
  evolveReferralFacts,
  type Instant,
  REFERRAL_FACT_FIELDS,
  type ReferralCommand,
  type ReferralEvent,
  type ReferralFacts,
  type ReferralFactsQuery,
  type ReferralFactsReadModel,
  type ReferralState,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type { PostgresEventStore } from './event-store.js'
import { quoteSchema } from './migrations.js'
import { createPostgresProjection, type PostgresProjection } from './projection.js'
import { sqlFactReport } from './referral-facts-report.js'

/** The projection's name: keys its checkpoint in `<schema>.projection_checkpoints`. */
export const REFERRAL_FACTS_PROJECTION = 'referral_facts_v1'

/**
 * The referral-facts read model of the reports in PostgreSQL: `<schema>.referral_facts` (created by
 * migration 3), one row per referral, the same rows as the in-memory `createReferralFactsIndex`
 * (both fold with `evolveReferralFacts`). Kept by a checkpointed projection (each batch and its
 * checkpoint in one transaction); `rebuild()` truncates the table and replays the log.
 */
export interface PostgresReferralFacts extends ReferralFactsReadModel {
  readonly projection: PostgresProjection
  readonly rebuild: () => Promise<void>
  /** The fact reports aggregated in SQL (referral-facts-report.ts), equal to the core's `factReport`. */
  readonly report: NonNullable<ReferralFactsReadModel['report']>
}

const snake = (field: string): string => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
const COLUMNS = REFERRAL_FACT_FIELDS.map(snake)

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
    REFERRAL_FACT_FIELDS.map((k, i) => [k, row[COLUMNS[i] as string] ?? null]),
  ) as unknown as ReferralFacts

export const createPostgresReferralFacts = async (options: {
  readonly store: PostgresEventStore
  readonly aggregate: Aggregate<ReferralCommand, ReferralEvent, ReferralState>
  /** Events per transaction while rebuilding (default 5,000; live catch-up: 500). */
  readonly rebuildBatchSize?: number
}): Promise<PostgresReferralFacts> => {
  const { store, aggregate } = options
  const table = `${quoteSchema(store.schema)}.referral_facts`
  const columns = COLUMNS.join(', ')
  const placeholders = COLUMNS.map((_, i) => `$${i + 1}`).join(', ')
  const unnestParams = REFERRAL_FACT_FIELDS.map(
    (k, i) => `$${i + 1}::${COUNT_FIELDS.has(k) ? 'integer' : 'text'}[]`,
  ).join(', ')
  const updates = COLUMNS.filter((c) => c !== 'referral_id')
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(', ')

  const projection = await createPostgresProjection(store, {
    name: REFERRAL_FACTS_PROJECTION,
    streamPrefixes: ['referral-'],
    // A rebuild replays the log in larger transactions: fewer round trips and upserts per event.
    rebuildBatchSize: options.rebuildBatchSize ?? 5_000,
    // The table comes from migration 3; this only checks it is there (and names it for the rebuild).
    tables: { [`${store.schema}.referral_facts`]: `SELECT 1 FROM ${table} LIMIT 0` },
    handle: async (stored, client) => {
      const decoded = await decodeStored(aggregate, stored)
      if (E.isLeft(decoded)) throw new Error(`referral facts: ${decoded.left.message}`)
      const event = decoded.right
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
    },
    // The same fold over a batch: one SELECT of the rows it touches, the events folded in memory in
    // store order, one multi-row upsert of the rows that changed (each referral once).
    handleBatch: async (events, client) => {
      const decoded: { readonly event: ReferralEvent; readonly at: Instant }[] = []
      for (const stored of events) {
        const d = await decodeStored(aggregate, stored)
        if (E.isLeft(d)) throw new Error(`referral facts: ${d.left.message}`)
        decoded.push({ event: d.right, at: stored.metadata.occurredAt })
      }
      if (decoded.length === 0) return
      const ids = [...new Set(decoded.map((d) => d.event.data.referralId))]
      const current = await client.query<Row>(
        `SELECT ${columns} FROM ${table} WHERE referral_id = ANY($1::text[])`,
        [ids],
      )
      const rows = new Map<string, ReferralFacts | null>(ids.map((id) => [id, null]))
      for (const row of current.rows) rows.set(String(row.referral_id), factsOf(row))
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
    rebuild: () => projection.rebuild(),
    facts,
    report: async (q, options) => {
      await projection.catchUp()
      return sqlFactReport(store.pool, table, q, options)
    },
  }
}
