import type { PatientId, PatientKeyStore } from '@referrals/core'
import pg from 'pg'
import { type MasterKey, newDataKey, unwrapDataKey, wrapDataKey } from './master-key.js'

export interface PostgresPatientKeyStoreOptions {
  /** A pool to use (not closed by `close()`), or a connection string for a pool of its own. */
  readonly pool?: pg.Pool
  readonly connectionString?: string
  /** Schema of the key table; created on start. Default `referrals_keys`. */
  readonly schema?: string
  readonly masterKey: MasterKey
  /**
   * What `destroy` does after deleting the key row. `full` (default) runs `VACUUM (FULL)` on the
   * key table, which rewrites it without the dead row; `plain` runs `VACUUM`, which frees the row
   * for reuse without rewriting the file; `none` leaves it to autovacuum. See the README.
   */
  readonly vacuumOnDestroy?: 'full' | 'plain' | 'none'
}

export interface PostgresPatientKeyStore extends PatientKeyStore {
  readonly close: () => Promise<void>
}

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * Patient data keys in PostgreSQL, in a schema of their own (give it its own database role in
 * production: the event store's role needs no access to it). Each row holds a data key wrapped
 * with AES-256-GCM under the master key, bound to its kid and patient id. Forgetting deletes the
 * row; the wrapped key left in PostgreSQL files, WAL or backups opens only with the master key.
 */
export const createPostgresPatientKeyStore = async (
  options: PostgresPatientKeyStoreOptions,
): Promise<PostgresPatientKeyStore> => {
  const schema = options.schema ?? 'referrals_keys'
  if (!SCHEMA_PATTERN.test(schema))
    throw new RangeError('key store schema must be a lower-case SQL identifier')
  const ownPool = options.pool === undefined
  const pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: 5 })
  if (ownPool) pool.on('error', () => undefined)
  const table = `"${schema}".patient_keys`
  const vacuum = options.vacuumOnDestroy ?? 'full'

  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`referrals-key-store:${schema}`])
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table} (
         patient_id text PRIMARY KEY,
         kid text NOT NULL UNIQUE,
         wrapped_key bytea NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now()
       )`,
    )
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  } finally {
    client.release()
  }

  const unwrap = (row: { kid: string; patient_id: string; wrapped_key: Buffer }): Buffer =>
    unwrapDataKey(options.masterKey, row.kid, row.patient_id, row.wrapped_key)

  const find = async (patientId: PatientId) => {
    const found = await pool.query<{ kid: string; patient_id: string; wrapped_key: Buffer }>(
      `SELECT kid, patient_id, wrapped_key FROM ${table} WHERE patient_id = $1`,
      [patientId],
    )
    return found.rows[0]
  }

  return {
    getOrCreate: async (patientId) => {
      const existing = await find(patientId)
      if (existing !== undefined) return { kid: existing.kid, key: unwrap(existing) }
      const { kid, key } = newDataKey()
      const inserted = await pool.query(
        `INSERT INTO ${table} (patient_id, kid, wrapped_key) VALUES ($1, $2, $3)
         ON CONFLICT (patient_id) DO NOTHING`,
        [patientId, kid, wrapDataKey(options.masterKey, kid, patientId, key)],
      )
      if (inserted.rowCount === 1) return { kid, key }
      key.fill(0)
      const winner = await find(patientId)
      if (winner === undefined) throw new Error('patient data key vanished while being created')
      return { kid: winner.kid, key: unwrap(winner) }
    },
    get: async (kid) => {
      const found = await pool.query<{ kid: string; patient_id: string; wrapped_key: Buffer }>(
        `SELECT kid, patient_id, wrapped_key FROM ${table} WHERE kid = $1`,
        [kid],
      )
      const row = found.rows[0]
      return row === undefined ? null : unwrap(row)
    },
    destroy: async (patientId) => {
      const deleted = await pool.query(`DELETE FROM ${table} WHERE patient_id = $1`, [patientId])
      if (deleted.rowCount === 0 || vacuum === 'none') return
      await pool.query(vacuum === 'full' ? `VACUUM (FULL) ${table}` : `VACUUM ${table}`)
    },
    close: async () => {
      if (ownPool) await pool.end()
    },
  }
}
