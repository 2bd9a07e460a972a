import {
  type Aggregate,
  type BlindIndex,
  decodeReferralCursor,
  decodeStored,
  encodeReferralCursor,
  evolveReferral,
  initialReferralState,
  type ReferralCommand,
  type ReferralEvent,
  type ReferralIndex,
  type ReferralListQuery,
  type ReferralState,
  type ReferralSummary,
  referralSummaryOf,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type pg from 'pg'
import type { PostgresEventStore } from './event-store.js'
import { quoteSchema } from './migrations.js'
import { createPostgresProjection, type PostgresProjection } from './projection.js'

/**
 * The referral read models in PostgreSQL (issue: "read models kept in PostgreSQL tables by
 * projections, rebuildable from zero"):
 *
 * - `referral_summaries`: one row per referral — the non-PHI fields lists filter and sort on, plus
 *   the folded, PHI-free aggregate state (`state`, JSON) the scheduler and router read;
 * - `referral_history`: one row per event with actor, times and the event data without PHI;
 * - `referral_search_tokens`: keyed blind-index tokens of patient name and health number.
 *   Tokens are computed from the decrypted PHI while projecting; after a patient is forgotten, a
 *   rebuild can no longer compute them, so the patient is no longer findable. No plaintext PHI is
 *   ever written to these tables.
 *
 * The projection applies each batch and its checkpoint in one transaction (exactly-once effect);
 * `refresh()` catches up before answering, so a process reads its own writes.
 */
export interface PostgresReferralReadModel extends ReferralIndex {
  readonly projection: PostgresProjection
  /** Truncates the tables and replays the whole log (after a schema change). */
  readonly rebuild: () => Promise<void>
  /**
   * Removes a forgotten patient's search tokens at once (a rebuild would also drop them, since
   * their PHI can no longer be decrypted); returns how many tokens were removed.
   */
  readonly forgetPatient: (patientId: string) => Promise<number>
}

const PAGE_MAX = 200

interface SummaryRow {
  readonly referral_id: string
  readonly version: number
  readonly updated_at: string
  readonly state: ReferralState & { exists: true }
}

const summaryOf = (row: SummaryRow): ReferralSummary =>
  referralSummaryOf(row.state, row.version, row.updated_at as ReferralSummary['updatedAt'])

export const createPostgresReferralReadModel = async (options: {
  readonly store: PostgresEventStore
  readonly aggregate: Aggregate<ReferralCommand, ReferralEvent, ReferralState>
  readonly blindIndex?: BlindIndex
}): Promise<PostgresReferralReadModel> => {
  const { store, aggregate, blindIndex } = options
  const s = quoteSchema(store.schema)
  const summaries = `${s}.referral_summaries`
  const history = `${s}.referral_history`
  const tokens = `${s}.referral_search_tokens`

  const indexTokens = async (event: ReferralEvent, client: pg.PoolClient) => {
    if (blindIndex === undefined || event.type !== 'ReferralSent') return
    const phi = event.data.phi
    if (!('patient' in phi)) return // forgotten: nothing to index
    const p = phi.patient
    const values = [
      blindIndex.token('patient_name', `${p.givenName} ${p.familyName}`),
      blindIndex.token('patient_name', p.familyName),
      ...(p.healthNumber === undefined ? [] : [blindIndex.token('health_number', p.healthNumber)]),
    ]
    for (const token of values) {
      await client.query(
        `INSERT INTO ${tokens} (token, referral_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
        [token, event.data.referralId],
      )
    }
  }

  const projection = await createPostgresProjection(store, {
    name: 'referral_read_model_v1',
    streamPrefixes: ['referral-'],
    tables: {
      [`${store.schema}.referral_summaries`]: `CREATE TABLE IF NOT EXISTS ${summaries} (
        referral_id text PRIMARY KEY,
        sender_practice_id text NOT NULL,
        recipient_practice_id text,
        former_recipients text[] NOT NULL,
        patient_id text NOT NULL,
        status text NOT NULL,
        urgency text NOT NULL,
        specialty_id text NOT NULL,
        category_id text NOT NULL,
        subcategory_id text,
        route text NOT NULL,
        sent_at text NOT NULL,
        updated_at text NOT NULL,
        version integer NOT NULL,
        state jsonb NOT NULL
      );
      CREATE INDEX IF NOT EXISTS referral_summaries_sender ON ${summaries} (sender_practice_id, sent_at DESC, referral_id DESC);
      CREATE INDEX IF NOT EXISTS referral_summaries_recipient ON ${summaries} (recipient_practice_id, sent_at DESC, referral_id DESC);
      CREATE INDEX IF NOT EXISTS referral_summaries_status ON ${summaries} (status)`,
      [`${store.schema}.referral_history`]: `CREATE TABLE IF NOT EXISTS ${history} (
        referral_id text NOT NULL,
        version integer NOT NULL,
        type text NOT NULL,
        recorded_at text NOT NULL,
        occurred_at text NOT NULL,
        actor jsonb NOT NULL,
        data jsonb NOT NULL,
        PRIMARY KEY (referral_id, version)
      )`,
      [`${store.schema}.referral_search_tokens`]: `CREATE TABLE IF NOT EXISTS ${tokens} (
        token text NOT NULL,
        referral_id text NOT NULL,
        PRIMARY KEY (token, referral_id)
      )`,
    },
    handle: async (stored, client) => {
      const decoded = await decodeStored(aggregate, stored)
      if (E.isLeft(decoded)) throw new Error(`referral read model: ${decoded.left.message}`)
      const event = decoded.right
      const referralId = event.data.referralId
      const current = await client.query<{ state: ReferralState }>(
        `SELECT state FROM ${summaries} WHERE referral_id = $1`,
        [referralId],
      )
      const next = evolveReferral(current.rows[0]?.state ?? initialReferralState, event)
      if (next.exists) {
        await client.query(
          `INSERT INTO ${summaries} (referral_id, sender_practice_id, recipient_practice_id, former_recipients, patient_id,
             status, urgency, specialty_id, category_id, subcategory_id, route, sent_at, updated_at, version, state)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)
           ON CONFLICT (referral_id) DO UPDATE SET sender_practice_id = EXCLUDED.sender_practice_id,
             recipient_practice_id = EXCLUDED.recipient_practice_id, former_recipients = EXCLUDED.former_recipients,
             patient_id = EXCLUDED.patient_id, status = EXCLUDED.status, urgency = EXCLUDED.urgency,
             specialty_id = EXCLUDED.specialty_id, category_id = EXCLUDED.category_id,
             subcategory_id = EXCLUDED.subcategory_id, route = EXCLUDED.route, sent_at = EXCLUDED.sent_at,
             updated_at = EXCLUDED.updated_at, version = EXCLUDED.version, state = EXCLUDED.state`,
          [
            referralId,
            next.senderPracticeId,
            next.recipientPracticeId,
            next.formerRecipients,
            next.patientId,
            next.status,
            next.urgency,
            next.specialtyId,
            next.category.categoryId,
            next.category.subcategoryId ?? null,
            next.route,
            next.sentAt,
            stored.recordedAt,
            stored.version,
            JSON.stringify(next),
          ],
        )
      }
      const { phi: _phi, ...withoutPhi } = event.data as Record<string, unknown> & { phi?: unknown }
      const actor = stored.metadata.actor
      await client.query(
        `INSERT INTO ${history} (referral_id, version, type, recorded_at, occurred_at, actor, data)
         VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING`,
        [
          referralId,
          stored.version,
          stored.type,
          stored.recordedAt,
          stored.metadata.occurredAt,
          JSON.stringify(actor.kind === 'user' ? { kind: 'user', userId: actor.userId } : actor),
          JSON.stringify(withoutPhi),
        ],
      )
      await indexTokens(event, client)
    },
  })

  const rows = async (sql: string, params: readonly unknown[]): Promise<readonly SummaryRow[]> => {
    await projection.catchUp()
    const r = await store.pool.query<SummaryRow>(sql, [...params])
    return r.rows
  }

  // Code-point order ("C" collation), the same as the in-memory read model's string comparison, so
  // both page identically whatever the database's default collation.
  const list = async (q: ReferralListQuery) => {
    const after = q.cursor === undefined ? null : decodeReferralCursor(q.cursor)
    if (q.cursor !== undefined && after === null) return E.left('invalid_cursor' as const)
    const where: string[] = []
    const params: unknown[] = []
    const p = (v: unknown) => {
      params.push(v)
      return `$${params.length}`
    }
    if (q.box === 'sent') where.push(`sender_practice_id = ${p(q.practiceId)}`)
    else {
      const id = p(q.practiceId)
      where.push(`(recipient_practice_id = ${id} OR ${id} = ANY(former_recipients))`)
    }
    if (q.status !== undefined) where.push(`status = ANY(${p([...q.status])})`)
    if (q.urgency !== undefined) where.push(`urgency = ${p(q.urgency)}`)
    if (q.specialtyId !== undefined) where.push(`specialty_id = ${p(q.specialtyId)}`)
    if (q.categoryId !== undefined) {
      const c = p(q.categoryId)
      where.push(`(category_id = ${c} OR subcategory_id = ${c})`)
    }
    if (q.sentFrom !== undefined) where.push(`sent_at >= ${p(q.sentFrom)}`)
    if (q.sentTo !== undefined) where.push(`sent_at < ${p(q.sentTo)}`)
    if (q.patient !== undefined) {
      const candidates =
        blindIndex === undefined
          ? []
          : [blindIndex.token('patient_name', q.patient), blindIndex.token('health_number', q.patient)]
      where.push(`referral_id IN (SELECT referral_id FROM ${tokens} WHERE token = ANY(${p(candidates)}))`)
    }
    if (after !== null) {
      where.push(`(sent_at COLLATE "C", referral_id COLLATE "C") < (${p(after[0])}, ${p(after[1])})`)
    }
    const limit = Math.min(Math.max(q.limit ?? 25, 1), PAGE_MAX)
    const found = await rows(
      `SELECT referral_id, version, updated_at, state FROM ${summaries}
       WHERE ${where.join(' AND ')}
       ORDER BY sent_at COLLATE "C" DESC, referral_id COLLATE "C" DESC LIMIT ${limit + 1}`,
      params,
    )
    const items = found.slice(0, limit).map(summaryOf)
    const last = items.at(-1)
    return E.right({ items, nextCursor: found.length > limit && last ? encodeReferralCursor(last) : null })
  }

  return {
    projection,
    refresh: () => projection.catchUp(),
    rebuild: () => projection.rebuild(),
    forgetPatient: async (patientId) => {
      await projection.catchUp()
      const r = await store.pool.query(
        `DELETE FROM ${tokens} WHERE referral_id IN (SELECT referral_id FROM ${summaries} WHERE patient_id = $1)`,
        [patientId],
      )
      return r.rowCount ?? 0
    },
    list,
    get: async (referralId) => {
      const found = await rows(
        `SELECT referral_id, version, updated_at, state FROM ${summaries} WHERE referral_id = $1`,
        [referralId],
      )
      return found[0] === undefined ? null : summaryOf(found[0])
    },
    unassigned: async () =>
      (
        await rows(
          `SELECT referral_id, version, updated_at, state FROM ${summaries} WHERE status = 'unassigned' ORDER BY sent_at, referral_id`,
          [],
        )
      ).map(summaryOf),
    open: async () =>
      (
        await rows(
          `SELECT referral_id, version, updated_at, state FROM ${summaries} WHERE status IN ('pending', 'unassigned') ORDER BY sent_at, referral_id`,
          [],
        )
      ).map((r) => r.state),
  }
}
