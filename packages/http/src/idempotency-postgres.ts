import { groupCommit } from '@referrals/core'
import { type PostgresCompanionWrite, postgresCompanionKind } from '@referrals/postgres'
import pg from 'pg'
import type { BeginResult, IdempotencyStore, StoredResponse } from './idempotency.js'

/**
 * `IdempotencyStore` on PostgreSQL, in its own schema (default `referrals_http`) so it never
 * mixes with event tables. A claim is an insert that also takes over an expired record, so two
 * processes racing on one key see exactly one `started`.
 *
 * Claims and completions are group-committed (`groupCommit` from `@referrals/core`): while one statement of claims
 * is in flight, the claims that arrive queue and the next statement writes them all (one
 * multi-row `INSERT … ON CONFLICT`, one commit), and likewise for completions (one multi-row
 * `UPDATE`). Each caller is answered only when the statement holding its row has committed, so
 * a claim or a completion is exactly as durable as with a statement of its own; two requests with
 * the same key never share a statement (the second sees what the first wrote).
 *
 * An in-flight claim holds a lease (`inFlightLeaseMs`, 60 s by default): if its process dies
 * before answering (`kill -9`), a retry after the lease takes the key over instead of getting 409
 * for the whole record lifetime. A completed record lasts `ttlMs` from its claim. The response of
 * a claim that was taken over is not stored (completion and release name the claim they end).
 * The lease should exceed the longest request that carries a key.
 */
export interface PostgresIdempotencyOptions {
  /** A pool to share, or a connection string for a pool this store owns (and closes). */
  readonly pool?: pg.Pool
  readonly connectionString?: string
  readonly schema?: string
  /** How long an unanswered claim blocks its key (default 60 s). */
  readonly inFlightLeaseMs?: number
  /** Most claims (and most completions) written in one statement (default 256; 1 turns group commit off). */
  readonly maxBatch?: number
}

export const IN_FLIGHT_LEASE_MS = 60_000

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

export const postgresIdempotencyStore = async (
  options: PostgresIdempotencyOptions,
): Promise<IdempotencyStore & { readonly close: () => Promise<void> }> => {
  const schema = options.schema ?? 'referrals_http'
  if (!SCHEMA_NAME.test(schema)) throw new TypeError('schema must be a lower-case SQL identifier')
  const leaseMs = options.inFlightLeaseMs ?? IN_FLIGHT_LEASE_MS
  if (!Number.isSafeInteger(leaseMs) || leaseMs <= 0)
    throw new TypeError('inFlightLeaseMs must be a positive integer')
  const maxBatch = options.maxBatch ?? 256
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1)
    throw new TypeError('maxBatch must be a positive integer')
  const ownsPool = options.pool === undefined
  const pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: 5 })
  const table = `"${schema}".idempotency_keys`

  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    // Serialise concurrent first starts: CREATE … IF NOT EXISTS is not race-free in PostgreSQL.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${schema}.idempotency_keys`])
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${table} (
        scope       text        NOT NULL,
        key         text        NOT NULL,
        fingerprint text        NOT NULL,
        status      integer,
        headers     jsonb,
        body        text,
        created_at  timestamptz NOT NULL,
        expires_at  timestamptz NOT NULL,
        PRIMARY KEY (scope, key)
      )`)
    // Added after the first release: tables created before have no lease (NULL: never taken over).
    await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS lease_until timestamptz`)
    await client.query(`CREATE INDEX IF NOT EXISTS idempotency_keys_expires_at ON ${table} (expires_at)`)
    await client.query(
      `CREATE INDEX IF NOT EXISTS idempotency_keys_lease_until ON ${table} (lease_until) WHERE status IS NULL`,
    )
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK')
    throw error
  } finally {
    client.release()
  }

  interface ClaimItem {
    readonly scope: string
    readonly key: string
    readonly fingerprint: string
    readonly now: Date
    readonly ttlMs: number
  }
  interface CompletionItem {
    readonly scope: string
    readonly key: string
    readonly response: StoredResponse
    readonly claimedAt: Date | undefined
  }
  const idOf = (item: { readonly scope: string; readonly key: string }) =>
    `${item.scope.length}:${item.scope}${item.key}`
  // Rows in one order in every batch of every process (scope, then key; JavaScript order, the same
  // everywhere), so two batches that overlap lock their rows in the same order and cannot deadlock.
  const byId = <I extends { readonly scope: string; readonly key: string }>(items: readonly I[]) =>
    items
      .map((item, index) => ({ item, index, id: idOf(item) }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))

  // One statement claims every key of the batch (an insert that also takes over an expired record
  // or a claim whose lease ran out); the keys it did not claim are then read in one statement.
  const writeClaims = async (items: readonly ClaimItem[]): Promise<BeginResult[]> => {
    const rows = byId(items)
    const claimed = await pool.query<{ scope: string; key: string }>(
      `INSERT INTO ${table} AS k (scope, key, fingerprint, created_at, expires_at, lease_until)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
       ON CONFLICT (scope, key) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, status = NULL, headers = NULL, body = NULL,
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
             lease_until = EXCLUDED.lease_until
         WHERE k.expires_at <= EXCLUDED.created_at
            OR (k.status IS NULL AND k.lease_until <= EXCLUDED.created_at)
       RETURNING k.scope, k.key`,
      [
        rows.map((r) => r.item.scope),
        rows.map((r) => r.item.key),
        rows.map((r) => r.item.fingerprint),
        rows.map((r) => r.item.now),
        rows.map((r) => new Date(r.item.now.getTime() + r.item.ttlMs)),
        rows.map((r) => new Date(r.item.now.getTime() + Math.min(leaseMs, r.item.ttlMs))),
      ],
    )
    const won = new Set(claimed.rows.map(idOf))
    const results: BeginResult[] = items.map(() => ({ kind: 'started' }))
    const lost = rows.filter((r) => !won.has(r.id))
    if (lost.length === 0) return results
    const existing = await pool.query<{
      scope: string
      key: string
      fingerprint: string
      status: number | null
      headers: Record<string, string> | null
      body: string | null
    }>(
      `SELECT k.scope, k.key, k.fingerprint, k.status, k.headers, k.body
       FROM ${table} AS k JOIN unnest($1::text[], $2::text[]) AS w(scope, key)
         ON k.scope = w.scope AND k.key = w.key`,
      [lost.map((r) => r.item.scope), lost.map((r) => r.item.key)],
    )
    const found = new Map(existing.rows.map((row) => [idOf(row), row]))
    for (const r of lost) {
      const row = found.get(r.id)
      results[r.index] =
        // Released between the two statements: the caller may simply retry; report it as in flight.
        row === undefined
          ? { kind: 'in_flight' }
          : row.fingerprint !== r.item.fingerprint
            ? { kind: 'mismatch' }
            : row.status === null
              ? { kind: 'in_flight' }
              : {
                  kind: 'replay',
                  response: { status: row.status, headers: row.headers ?? {}, body: row.body ?? '' },
                }
    }
    return results
  }

  // With a `claimedAt`, only that claim is ended: one taken over after its lease is left alone.
  const writeCompletions = async (items: readonly CompletionItem[]): Promise<undefined[]> => {
    const rows = byId(items)
    await pool.query(
      `UPDATE ${table} AS k
       SET status = v.status, headers = v.headers, body = v.body, lease_until = NULL
       FROM unnest($1::text[], $2::text[], $3::integer[], $4::jsonb[], $5::text[], $6::timestamptz[])
         AS v(scope, key, status, headers, body, claimed_at)
       WHERE k.scope = v.scope AND k.key = v.key AND k.status IS NULL
         AND (v.claimed_at IS NULL OR k.created_at = v.claimed_at)`,
      [
        rows.map((r) => r.item.scope),
        rows.map((r) => r.item.key),
        rows.map((r) => r.item.response.status),
        rows.map((r) => JSON.stringify(r.item.response.headers)),
        rows.map((r) => r.item.response.body),
        rows.map((r) => r.item.claimedAt ?? null),
      ],
    )
    return items.map(() => undefined)
  }

  const claims = groupCommit<ClaimItem, BeginResult>({ write: writeClaims, keyOf: idOf, maxBatch })
  const completions = groupCommit<CompletionItem, undefined>({
    write: writeCompletions,
    keyOf: idOf,
    maxBatch,
  })

  const begin = (scope: string, key: string, fingerprint: string, now: Date, ttlMs: number) =>
    claims.submit({ scope, key, fingerprint, now, ttlMs })

  const complete = async (
    scope: string,
    key: string,
    response: StoredResponse,
    claimedAt?: Date,
  ): Promise<void> => {
    await completions.submit({ scope, key, response, claimedAt })
  }

  // The completion as a companion of an event-store append on the same database: the statement of
  // `writeCompletions`, run after the append in its transaction (it reads `appended`, so it waits
  // for the append's stream locks; see `PostgresCompanionWrite`).
  const companionKind = await postgresCompanionKind(pool)
  const companionText = `UPDATE ${table} AS k
       SET status = v.status, headers = v.headers, body = v.body, lease_until = NULL
       FROM unnest($1::text[], $2::text[], $3::integer[], $4::jsonb[], $5::text[], $6::timestamptz[])
         AS v(scope, key, status, headers, body, claimed_at)
       WHERE k.scope = v.scope AND k.key = v.key AND k.status IS NULL
         AND (v.claimed_at IS NULL OR k.created_at = v.claimed_at)
         AND EXISTS (SELECT 1 FROM appended)`
  const completionWrite = (
    scope: string,
    key: string,
    response: StoredResponse,
    claimedAt?: Date,
  ): PostgresCompanionWrite => ({
    kind: companionKind,
    text: companionText,
    row: [scope, key, response.status, JSON.stringify(response.headers), response.body, claimedAt ?? null],
    sortKey: idOf({ scope, key }),
  })

  const release = async (scope: string, key: string, claimedAt?: Date): Promise<void> => {
    await pool.query(
      `DELETE FROM ${table}
       WHERE scope = $1 AND key = $2 AND status IS NULL AND ($3::timestamptz IS NULL OR created_at = $3)`,
      [scope, key, claimedAt ?? null],
    )
  }

  return {
    begin,
    complete,
    completionWrite,
    release,
    close: async () => {
      if (ownsPool) await pool.end()
    },
  }
}

/**
 * Deletes expired records and in-flight claims whose lease ran out (a process died before
 * answering); records are also taken over lazily on reuse.
 */
export const purgeExpiredIdempotencyKeys = async (
  pool: pg.Pool,
  now: Date,
  schema = 'referrals_http',
): Promise<number> => {
  if (!SCHEMA_NAME.test(schema)) throw new TypeError('schema must be a lower-case SQL identifier')
  const result = await pool.query(
    `DELETE FROM "${schema}".idempotency_keys
     WHERE expires_at <= $1 OR (status IS NULL AND lease_until <= $1)`,
    [now],
  )
  return result.rowCount ?? 0
}

export interface IdempotencyPurgeOptions {
  /** Between purges (default 10 minutes). */
  readonly intervalMs?: number
  readonly schema?: string
  readonly now?: () => Date
  /** A failed purge (database unavailable) is reported here and retried at the next interval. */
  readonly onError?: (error: unknown) => void
}

export interface IdempotencyPurge {
  /** Stops the timer and waits for a purge in progress; call it before ending the pool. */
  readonly stop: () => Promise<void>
}

/**
 * Runs `purgeExpiredIdempotencyKeys` every `intervalMs` (the first run after one interval). The
 * timer does not keep the process alive; purges never overlap.
 */
export const startIdempotencyPurge = (
  pool: pg.Pool,
  options: IdempotencyPurgeOptions = {},
): IdempotencyPurge => {
  const intervalMs = options.intervalMs ?? 10 * 60_000
  if (!Number.isSafeInteger(intervalMs) || intervalMs <= 0)
    throw new TypeError('intervalMs must be a positive integer')
  const schema = options.schema ?? 'referrals_http'
  if (!SCHEMA_NAME.test(schema)) throw new TypeError('schema must be a lower-case SQL identifier')
  const now = options.now ?? (() => new Date())
  let running: Promise<void> | undefined
  const timer = setInterval(() => {
    if (running !== undefined) return
    running = purgeExpiredIdempotencyKeys(pool, now(), schema)
      .then(
        () => undefined,
        (error: unknown) => options.onError?.(error),
      )
      .finally(() => {
        running = undefined
      })
  }, intervalMs)
  timer.unref()
  return {
    stop: async () => {
      clearInterval(timer)
      await running
    },
  }
}
