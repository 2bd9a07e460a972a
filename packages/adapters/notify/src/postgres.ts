import type pg from 'pg'
import type { UsedLinkStore } from './decision-links.js'
import type { Notification } from './notification.js'
import type { OutboxEntry, OutboxStore } from './outbox.js'
import {
  type NotificationPreferences,
  type PreferencesStore,
  parseNotificationPreferences,
  preferenceOwnerKey,
} from './preferences.js'
import type { DeliveryState } from './retry.js'

/**
 * PostgreSQL storage for notifications, in its own schema (default `notify`), apart from the
 * event store: the outbox, notification preferences and used decision links.
 */
export const DEFAULT_NOTIFY_SCHEMA = 'notify'
const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/

const quote = (schema: string): string => {
  if (!SCHEMA.test(schema)) throw new Error('schema name must be a lower-case SQL identifier')
  return `"${schema}"`
}

/**
 * Creates the tables if missing. Safe when several processes start at once: one transaction
 * holding an advisory lock per schema.
 */
export const migrateNotifySchema = async (pool: pg.Pool, schema: string = DEFAULT_NOTIFY_SCHEMA) => {
  const s = quote(schema)
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [
      'referrals-notify',
      schema,
    ])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.outbox (
      id text PRIMARY KEY,
      event_id text NOT NULL,
      audience text NOT NULL,
      channel text NOT NULL,
      notification jsonb NOT NULL,
      address jsonb,
      status text NOT NULL,
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at_ms bigint,
      last_error text,
      delivered_at_ms bigint,
      claimed_until_ms bigint,
      seq bigserial NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`)
    // Added with delivery receipts: the carrier's message ids and the receipt deadline of an
    // entry in awaiting_receipt (tables made before get the columns and the wider status check).
    await client.query(`ALTER TABLE ${s}.outbox ADD COLUMN IF NOT EXISTS message_ids text[]`)
    await client.query(`ALTER TABLE ${s}.outbox ADD COLUMN IF NOT EXISTS receipt_deadline_ms bigint`)
    // Added with uncertain submits (sent, never answered): receipts only count from this time on.
    await client.query(`ALTER TABLE ${s}.outbox ADD COLUMN IF NOT EXISTS uncertain_since_ms bigint`)
    await client.query(`ALTER TABLE ${s}.outbox DROP CONSTRAINT IF EXISTS outbox_status_check`)
    await client.query(
      `ALTER TABLE ${s}.outbox ADD CONSTRAINT outbox_status_check
         CHECK (status IN ('pending', 'awaiting_receipt', 'uncertain', 'delivered', 'dead_letter'))`,
    )
    await client.query(
      `CREATE INDEX IF NOT EXISTS outbox_due ON ${s}.outbox (next_attempt_at_ms) WHERE status = 'pending'`,
    )
    await client.query(
      `CREATE INDEX IF NOT EXISTS outbox_awaiting ON ${s}.outbox (receipt_deadline_ms) WHERE status = 'awaiting_receipt'`,
    )
    await client.query(
      `CREATE INDEX IF NOT EXISTS outbox_uncertain ON ${s}.outbox (receipt_deadline_ms) WHERE status = 'uncertain'`,
    )
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.delivery_receipts (
      channel text NOT NULL,
      message_id text NOT NULL,
      stat text NOT NULL,
      received_at_ms bigint NOT NULL,
      PRIMARY KEY (channel, message_id)
    )`)
    await client.query(`CREATE INDEX IF NOT EXISTS outbox_status ON ${s}.outbox (status, seq)`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.preferences (
      owner text PRIMARY KEY,
      preferences jsonb NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.used_decision_links (
      nonce text PRIMARY KEY,
      expires_at_ms bigint NOT NULL,
      used_at timestamptz NOT NULL DEFAULT now()
    )`)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  } finally {
    client.release()
  }
}

interface OutboxRow {
  readonly notification: Notification
  readonly channel: string
  readonly address: unknown
  readonly status: DeliveryState['status']
  readonly attempts: number
  readonly next_attempt_at_ms: string | null
  readonly last_error: string | null
  readonly delivered_at_ms: string | null
  readonly message_ids: readonly string[] | null
  readonly receipt_deadline_ms: string | null
  readonly uncertain_since_ms: string | null
  readonly receipts: Readonly<Record<string, string>> | null
}

const stateOf = (row: OutboxRow): DeliveryState => {
  switch (row.status) {
    case 'pending':
      return {
        status: 'pending',
        attempts: row.attempts,
        nextAttemptAtMs: Number(row.next_attempt_at_ms ?? 0),
        lastError: row.last_error,
      }
    case 'awaiting_receipt':
      return {
        status: 'awaiting_receipt',
        attempts: row.attempts,
        messageIds: row.message_ids ?? [],
        receiptDeadlineMs: Number(row.receipt_deadline_ms ?? 0),
        receipts: row.receipts ?? {},
      }
    case 'uncertain':
      return {
        status: 'uncertain',
        attempts: row.attempts,
        messageIds: row.message_ids ?? [],
        sinceMs: Number(row.uncertain_since_ms ?? 0),
        receiptDeadlineMs: Number(row.receipt_deadline_ms ?? 0),
        receipts: row.receipts ?? {},
        lastError: row.last_error ?? '',
      }
    case 'delivered':
      return { status: 'delivered', attempts: row.attempts, deliveredAtMs: Number(row.delivered_at_ms ?? 0) }
    case 'dead_letter':
      return { status: 'dead_letter', attempts: row.attempts, lastError: row.last_error ?? '' }
  }
}

const entryOf = (row: OutboxRow): OutboxEntry => ({
  notification: row.notification,
  channel: row.channel,
  address: row.address,
  state: stateOf(row),
})

/** The row's columns and its receipts so far (`schema` quoted), for a query on `outbox o`. */
const columns = (s: string) =>
  `o.notification, o.channel, o.address, o.status, o.attempts, o.next_attempt_at_ms, o.last_error,
   o.delivered_at_ms, o.message_ids, o.receipt_deadline_ms, o.uncertain_since_ms,
   (SELECT jsonb_object_agg(r.message_id, r.stat) FROM ${s}.delivery_receipts r
     WHERE ${receiptMatches('o', 'r')}) AS receipts`

/** Receipt `r` belongs to waiting entry `o` (an uncertain one: only receipts since its submit). */
const receiptMatches = (o: string, r: string) =>
  `${o}.status IN ('awaiting_receipt', 'uncertain') AND ${r}.channel = ${o}.channel
   AND ${r}.message_id = ANY(${o}.message_ids)
   AND (${o}.status <> 'uncertain' OR ${r}.received_at_ms >= ${o}.uncertain_since_ms)`

/**
 * The outbox in PostgreSQL. `enqueue` inserts with `ON CONFLICT DO NOTHING` (idempotent on the
 * notification id). `claimDue` takes due rows with `FOR UPDATE SKIP LOCKED` and leases them for
 * `leaseMs`, so concurrent workers in any number of processes get disjoint entries, and a worker
 * that dies mid-delivery releases its entries when the lease runs out (they are then retried:
 * delivery is at least once). `record` ends the lease.
 */
export const createPostgresOutbox = async (options: {
  readonly pool: pg.Pool
  readonly schema?: string
  readonly leaseMs?: number
  /** Create the tables if missing (default true). */
  readonly migrate?: boolean
}): Promise<OutboxStore> => {
  const schema = options.schema ?? DEFAULT_NOTIFY_SCHEMA
  const s = quote(schema)
  const leaseMs = options.leaseMs ?? 5 * 60_000
  if (options.migrate !== false) await migrateNotifySchema(options.pool, schema)
  const { pool } = options
  const COLUMNS = columns(s)
  return {
    enqueue: async (entries, nowMs) => {
      if (entries.length === 0) return
      const rows = entries.map((e) => ({
        id: e.notification.id,
        event_id: e.notification.eventId,
        audience: e.notification.audience,
        channel: e.channel,
        notification: e.notification,
        address: e.address ?? null,
        next_attempt_at_ms: e.notBeforeMs ?? nowMs,
      }))
      await pool.query(
        `INSERT INTO ${s}.outbox (id, event_id, audience, channel, notification, address, status, next_attempt_at_ms)
         SELECT r.id, r.event_id, r.audience, r.channel, r.notification, r.address, 'pending', r.next_attempt_at_ms
         FROM jsonb_to_recordset($1::jsonb) AS r(id text, event_id text, audience text, channel text,
              notification jsonb, address jsonb, next_attempt_at_ms bigint)
         ORDER BY r.id
         ON CONFLICT (id) DO NOTHING`,
        [JSON.stringify(rows)],
      )
    },
    claimDue: async (nowMs, limit) => {
      const result = await pool.query<OutboxRow>(
        `UPDATE ${s}.outbox o SET claimed_until_ms = $1::bigint + $3::bigint, updated_at = now()
         WHERE id IN (
           SELECT id FROM ${s}.outbox
           WHERE status = 'pending' AND next_attempt_at_ms <= $1::bigint
             AND (claimed_until_ms IS NULL OR claimed_until_ms <= $1::bigint)
           ORDER BY next_attempt_at_ms, seq
           LIMIT $2
           FOR UPDATE SKIP LOCKED)
         RETURNING ${COLUMNS}`,
        [nowMs, limit, leaseMs],
      )
      return result.rows.map(entryOf)
    },
    record: async (id, state) => {
      const final = state.status === 'delivered' || state.status === 'dead_letter'
      // A settled message's receipts are no longer needed (one statement: the old ids are read before the update).
      await pool.query(
        `WITH old AS (SELECT channel, message_ids FROM ${s}.outbox WHERE id = $1 AND $8::boolean),
         gone AS (
           DELETE FROM ${s}.delivery_receipts r USING old
           WHERE r.channel = old.channel AND r.message_id = ANY(old.message_ids))
         UPDATE ${s}.outbox SET status = $2, attempts = $3, next_attempt_at_ms = $4, last_error = $5,
           delivered_at_ms = $6, message_ids = $7, receipt_deadline_ms = $9, uncertain_since_ms = $10,
           claimed_until_ms = NULL, updated_at = now(),
           address = CASE WHEN $8::boolean AND audience = 'patient' THEN NULL ELSE address END
         WHERE id = $1`,
        [
          id,
          state.status,
          state.attempts,
          state.status === 'pending' ? state.nextAttemptAtMs : null,
          state.status === 'pending' || state.status === 'dead_letter' || state.status === 'uncertain'
            ? state.lastError
            : null,
          state.status === 'delivered' ? state.deliveredAtMs : null,
          state.status === 'awaiting_receipt' || state.status === 'uncertain' ? state.messageIds : null,
          final,
          state.status === 'awaiting_receipt' || state.status === 'uncertain'
            ? state.receiptDeadlineMs
            : null,
          state.status === 'uncertain' ? state.sinceMs : null,
        ],
      )
    },
    recordReceipt: async (channel, messageId, stat, nowMs) => {
      // A later receipt for the same message (an intermediate ENROUTE, then the final one) wins.
      await pool.query(
        `INSERT INTO ${s}.delivery_receipts (channel, message_id, stat, received_at_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (channel, message_id) DO UPDATE SET stat = EXCLUDED.stat, received_at_ms = EXCLUDED.received_at_ms`,
        [channel, messageId, stat, nowMs],
      )
    },
    claimAwaiting: async (nowMs, limit) => {
      const result = await pool.query<OutboxRow>(
        `UPDATE ${s}.outbox o SET claimed_until_ms = $1::bigint + $3::bigint, updated_at = now()
         WHERE id IN (
           SELECT w.id FROM ${s}.outbox w
           WHERE w.status IN ('awaiting_receipt', 'uncertain')
             AND (w.claimed_until_ms IS NULL OR w.claimed_until_ms <= $1::bigint)
             AND (w.receipt_deadline_ms <= $1::bigint OR EXISTS (
               SELECT 1 FROM ${s}.delivery_receipts r WHERE ${receiptMatches('w', 'r')}))
           ORDER BY w.receipt_deadline_ms, w.seq
           LIMIT $2
           FOR UPDATE SKIP LOCKED)
         RETURNING ${COLUMNS}`,
        [nowMs, limit, leaseMs],
      )
      return result.rows.map(entryOf)
    },
    list: async (filter) => {
      const result =
        filter?.status === undefined
          ? await pool.query<OutboxRow>(`SELECT ${COLUMNS} FROM ${s}.outbox o ORDER BY seq`)
          : await pool.query<OutboxRow>(
              `SELECT ${COLUMNS} FROM ${s}.outbox o WHERE status = $1 ORDER BY seq`,
              [filter.status],
            )
      return result.rows.map(entryOf)
    },
  }
}

/** Notification preferences in PostgreSQL (validated again on read: the table is not trusted blindly). */
export const createPostgresPreferences = async (options: {
  readonly pool: pg.Pool
  readonly schema?: string
  readonly migrate?: boolean
}): Promise<PreferencesStore> => {
  const schema = options.schema ?? DEFAULT_NOTIFY_SCHEMA
  const s = quote(schema)
  if (options.migrate !== false) await migrateNotifySchema(options.pool, schema)
  const { pool } = options
  return {
    get: async (owner) => {
      const result = await pool.query<{ preferences: unknown }>(
        `SELECT preferences FROM ${s}.preferences WHERE owner = $1`,
        [preferenceOwnerKey(owner)],
      )
      const row = result.rows[0]
      if (row === undefined) return null
      const parsed = parseNotificationPreferences(row.preferences)
      return parsed.ok ? parsed.value : null
    },
    put: async (owner, preferences: NotificationPreferences) => {
      await pool.query(
        `INSERT INTO ${s}.preferences (owner, preferences) VALUES ($1, $2)
         ON CONFLICT (owner) DO UPDATE SET preferences = EXCLUDED.preferences, updated_at = now()`,
        [preferenceOwnerKey(owner), JSON.stringify(preferences)],
      )
    },
    remove: async (owner) => {
      await pool.query(`DELETE FROM ${s}.preferences WHERE owner = $1`, [preferenceOwnerKey(owner)])
    },
  }
}

/** Used decision links in PostgreSQL: insert-if-absent on the nonce, shared by every process. */
export const createPostgresUsedLinks = async (options: {
  readonly pool: pg.Pool
  readonly schema?: string
  readonly migrate?: boolean
}): Promise<UsedLinkStore & { readonly purgeExpired: (nowMs: number) => Promise<number> }> => {
  const schema = options.schema ?? DEFAULT_NOTIFY_SCHEMA
  const s = quote(schema)
  if (options.migrate !== false) await migrateNotifySchema(options.pool, schema)
  const { pool } = options
  return {
    markUsed: async (nonce, expiresAtMs) => {
      const result = await pool.query(
        `INSERT INTO ${s}.used_decision_links (nonce, expires_at_ms) VALUES ($1, $2)
         ON CONFLICT (nonce) DO NOTHING`,
        [nonce, expiresAtMs],
      )
      return result.rowCount === 1
    },
    /** Expired links cannot be used anyway, so their nonces may go. */
    purgeExpired: async (nowMs) => {
      const result = await pool.query(`DELETE FROM ${s}.used_decision_links WHERE expires_at_ms <= $1`, [
        nowMs,
      ])
      return result.rowCount ?? 0
    },
  }
}
