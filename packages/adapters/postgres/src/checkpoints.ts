import type { CheckpointStore, GlobalPosition } from '@referrals/core'
import type pg from 'pg'
import { PostgresStoreError, toStoreError } from './errors.js'
import { DEFAULT_SCHEMA, quoteSchema } from './migrations.js'

export interface PostgresCheckpointStoreOptions {
  readonly pool: pg.Pool
  readonly schema?: string
}

/**
 * Subscription checkpoints in `<schema>.checkpoints`. `save` is compare-and-swap: an insert that
 * only succeeds when no row exists (previous `null`), or an update guarded by the previous value,
 * so a stale worker that lost its lock can never move a checkpoint backwards or sideways.
 */
export const createPostgresCheckpointStore = (options: PostgresCheckpointStoreOptions): CheckpointStore => {
  const s = quoteSchema(options.schema ?? DEFAULT_SCHEMA)
  const { pool } = options
  const run = async <A>(operation: string, f: () => Promise<A>): Promise<A> => {
    try {
      return await f()
    } catch (error) {
      throw new PostgresStoreError(toStoreError(error, operation))
    }
  }
  return {
    load: (subscriptionId) =>
      run('load checkpoint', async () => {
        const r = await pool.query<{ position: string }>(
          `SELECT position FROM ${s}.checkpoints WHERE subscription_id = $1`,
          [subscriptionId],
        )
        const row = r.rows[0]
        return row === undefined ? null : BigInt(row.position)
      }),
    save: (subscriptionId, previous: GlobalPosition | null, next: GlobalPosition) =>
      run('save checkpoint', async () => {
        const r =
          previous === null
            ? await pool.query(
                `INSERT INTO ${s}.checkpoints (subscription_id, position) VALUES ($1, $2)
                 ON CONFLICT (subscription_id) DO NOTHING`,
                [subscriptionId, next.toString()],
              )
            : await pool.query(
                `UPDATE ${s}.checkpoints SET position = $3, updated_at = now()
                 WHERE subscription_id = $1 AND position = $2`,
                [subscriptionId, previous.toString(), next.toString()],
              )
        return r.rowCount === 1
      }),
  }
}
