import pg from 'pg'
import type { BeginResult, IdempotencyStore, StoredResponse } from './idempotency.js'

/**
 * `IdempotencyStore` on PostgreSQL, in its own schema (default `referrals_http`) so it never
 * mixes with event tables. Claims are single statements: an insert that also takes over an
 * expired record, so two processes racing on one key see exactly one `started`.
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

  const begin = async (
    scope: string,
    key: string,
    fingerprint: string,
    now: Date,
    ttlMs: number,
  ): Promise<BeginResult> => {
    const expiresAt = new Date(now.getTime() + ttlMs)
    const leaseUntil = new Date(now.getTime() + Math.min(leaseMs, ttlMs))
    const claimed = await pool.query(
      `INSERT INTO ${table} AS k (scope, key, fingerprint, created_at, expires_at, lease_until)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (scope, key) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, status = NULL, headers = NULL, body = NULL,
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
             lease_until = EXCLUDED.lease_until
         WHERE k.expires_at <= EXCLUDED.created_at
            OR (k.status IS NULL AND k.lease_until <= EXCLUDED.created_at)
       RETURNING 1`,
      [scope, key, fingerprint, now, expiresAt, leaseUntil],
    )
    if (claimed.rowCount === 1) return { kind: 'started' }
    const existing = await pool.query<{
      fingerprint: string
      status: number | null
      headers: Record<string, string> | null
      body: string | null
    }>(`SELECT fingerprint, status, headers, body FROM ${table} WHERE scope = $1 AND key = $2`, [scope, key])
    const row = existing.rows[0]
    // Released between the two statements: the caller may simply retry; report it as in flight.
    if (row === undefined) return { kind: 'in_flight' }
    if (row.fingerprint !== fingerprint) return { kind: 'mismatch' }
    if (row.status === null) return { kind: 'in_flight' }
    return {
      kind: 'replay',
      response: { status: row.status, headers: row.headers ?? {}, body: row.body ?? '' },
    }
  }

  // With `claimedAt`, only that claim is ended: one taken over after its lease is left alone.
  const complete = async (
    scope: string,
    key: string,
    response: StoredResponse,
    claimedAt?: Date,
  ): Promise<void> => {
    await pool.query(
      `UPDATE ${table} SET status = $3, headers = $4, body = $5, lease_until = NULL
       WHERE scope = $1 AND key = $2 AND status IS NULL AND ($6::timestamptz IS NULL OR created_at = $6)`,
      [scope, key, response.status, JSON.stringify(response.headers), response.body, claimedAt ?? null],
    )
  }

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
