import pg from 'pg'
import type { BeginResult, IdempotencyStore, StoredResponse } from './idempotency.js'

/**
 * `IdempotencyStore` on PostgreSQL, in its own schema (default `referrals_http`) so it never
 * mixes with event tables. Claims are single statements: an insert that also takes over an
 * expired record, so two processes racing on one key see exactly one `started`.
 */
export interface PostgresIdempotencyOptions {
  /** A pool to share, or a connection string for a pool this store owns (and closes). */
  readonly pool?: pg.Pool
  readonly connectionString?: string
  readonly schema?: string
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

export const postgresIdempotencyStore = async (
  options: PostgresIdempotencyOptions,
): Promise<IdempotencyStore & { readonly close: () => Promise<void> }> => {
  const schema = options.schema ?? 'referrals_http'
  if (!SCHEMA_NAME.test(schema)) throw new TypeError('schema must be a lower-case SQL identifier')
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
    await client.query(`CREATE INDEX IF NOT EXISTS idempotency_keys_expires_at ON ${table} (expires_at)`)
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
    const claimed = await pool.query(
      `INSERT INTO ${table} AS k (scope, key, fingerprint, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (scope, key) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, status = NULL, headers = NULL, body = NULL,
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
         WHERE k.expires_at <= EXCLUDED.created_at
       RETURNING 1`,
      [scope, key, fingerprint, now, expiresAt],
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

  const complete = async (scope: string, key: string, response: StoredResponse): Promise<void> => {
    await pool.query(
      `UPDATE ${table} SET status = $3, headers = $4, body = $5 WHERE scope = $1 AND key = $2`,
      [scope, key, response.status, JSON.stringify(response.headers), response.body],
    )
  }

  const release = async (scope: string, key: string): Promise<void> => {
    await pool.query(`DELETE FROM ${table} WHERE scope = $1 AND key = $2 AND status IS NULL`, [scope, key])
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

/** Deletes expired records; run it now and then (records are also taken over lazily on reuse). */
export const purgeExpiredIdempotencyKeys = async (
  pool: pg.Pool,
  now: Date,
  schema = 'referrals_http',
): Promise<number> => {
  if (!SCHEMA_NAME.test(schema)) throw new TypeError('schema must be a lower-case SQL identifier')
  const result = await pool.query(`DELETE FROM "${schema}".idempotency_keys WHERE expires_at <= $1`, [now])
  return result.rowCount ?? 0
}
