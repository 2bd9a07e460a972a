import type { GlobalPosition, StoredEvent } from '@referrals/core'
import type pg from 'pg'
import { type CheckedOutClient, checkout, PostgresStoreError, toStoreError } from './errors.js'
import type { PostgresEventStore } from './event-store.js'
import { quoteSchema } from './migrations.js'

export interface PostgresProjectionDefinition {
  /** Unique per schema; keys the checkpoint in `<schema>.projection_checkpoints`. */
  readonly name: string
  /**
   * Tables the projection owns: name (optionally schema-qualified) → idempotent DDL
   * (`CREATE TABLE IF NOT EXISTS …`). Created at start; truncated by a rebuild.
   */
  readonly tables: Readonly<Record<string, string>>
  /** Only events of streams starting with one of these prefixes reach `handle`. */
  readonly streamPrefixes?: readonly string[]
  /** Applies one event with `client`, inside the transaction that also moves the checkpoint. */
  readonly handle: (event: StoredEvent, client: pg.PoolClient) => Promise<void>
  /**
   * Applies a whole batch (in store order) instead of calling `handle` per event, e.g. to read
   * and write the rows the batch touches in one statement each. Must have the same effect as
   * `handle` on each event in turn.
   */
  readonly handleBatch?: (events: readonly StoredEvent[], client: pg.PoolClient) => Promise<void>
  /** Events per transaction; default 500. */
  readonly batchSize?: number
  /** Events per transaction while `rebuild` replays the log (default: `batchSize`). */
  readonly rebuildBatchSize?: number
}

export interface PostgresProjection {
  readonly name: string
  /** Applies one batch; returns how many events it applied. */
  readonly runBatch: () => Promise<number>
  /** Applies batches until every event written before the call is applied. */
  readonly catchUp: () => Promise<void>
  /** Truncates the projection's tables, resets its checkpoint to 0 and replays everything. */
  readonly rebuild: () => Promise<void>
  /** The last applied position (0n before the first event). */
  readonly position: () => Promise<GlobalPosition>
  /** Keeps applying in the background (polling) until `stop`; errors stop it and reach `onError`. */
  readonly start: (options?: {
    readonly pollIntervalMs?: number
    readonly onError?: (e: unknown) => void
  }) => void
  readonly stop: () => Promise<void>
}

const quoteTable = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/.test(name)) {
    throw new PostgresStoreError({
      _tag: 'InvalidAppend',
      message: 'projection table names must be SQL identifiers',
    })
  }
  return name
    .split('.')
    .map((part) => `"${part}"`)
    .join('.')
}

const registries = new WeakMap<PostgresEventStore, Map<string, PostgresProjection>>()

/**
 * A read model kept in PostgreSQL tables with exactly-once effect: each batch runs in one
 * transaction that locks the projection's checkpoint row (`FOR UPDATE`, so two processes never
 * apply the same batch), reads the events after it, calls `handle` for each and moves the
 * checkpoint — the rows and the checkpoint commit or roll back together.
 */
export const createPostgresProjection = async (
  store: PostgresEventStore,
  definition: PostgresProjectionDefinition,
): Promise<PostgresProjection> => {
  const s = quoteSchema(store.schema)
  const { pool } = store
  const batchSize = definition.batchSize ?? 500
  const tables = Object.keys(definition.tables).map(quoteTable)

  const transaction = async <A>(operation: string, f: (client: pg.PoolClient) => Promise<A>): Promise<A> => {
    let checkedOut: CheckedOutClient
    try {
      checkedOut = await checkout(pool)
    } catch (error) {
      throw new PostgresStoreError(toStoreError(error, operation))
    }
    const { client } = checkedOut
    let broken = false
    try {
      await client.query('BEGIN')
      await client.query(
        `INSERT INTO ${s}.projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`,
        [definition.name],
      )
      const result = await f(client)
      await client.query('COMMIT')
      return result
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true
      })
      throw error
    } finally {
      checkedOut.release(broken)
    }
  }

  const lockCheckpoint = async (client: pg.PoolClient): Promise<GlobalPosition> => {
    const r = await client.query<{ position: string }>(
      `SELECT position FROM ${s}.projection_checkpoints WHERE name = $1 FOR UPDATE`,
      [definition.name],
    )
    return BigInt(r.rows[0]?.position ?? '0')
  }

  await transaction('create projection', async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [
      `referrals.projection:${store.schema}`,
      definition.name,
    ])
    for (const ddl of Object.values(definition.tables)) await client.query(ddl)
  })

  const applyBatch = async (
    size = batchSize,
  ): Promise<{
    applied: number
    horizon: GlobalPosition
    position: GlobalPosition
  }> =>
    transaction(`projection ${definition.name}`, async (client) => {
      const from = await lockCheckpoint(client)
      const { events, horizon } = await store.readAllWithHorizon(
        client,
        definition.streamPrefixes === undefined
          ? { after: from, maxCount: size }
          : { after: from, maxCount: size, streamPrefixes: definition.streamPrefixes },
      )
      if (definition.handleBatch !== undefined) await definition.handleBatch(events, client)
      else for (const event of events) await definition.handle(event, client)
      const last = events.at(-1)?.globalPosition ?? from
      if (last !== from) {
        await client.query(
          `UPDATE ${s}.projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1`,
          [definition.name, last.toString()],
        )
      }
      return { applied: events.length, horizon: events.length < size ? horizon : -1n, position: last }
    })

  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

  const catchUp = async (size = batchSize) => {
    const target = await store.lastPosition()
    for (;;) {
      const { applied, horizon, position } = await applyBatch(size)
      if (position >= target || horizon > target) return
      if (applied === 0) await sleep(20)
    }
  }

  let running: Promise<void> | undefined
  let stopping = false
  const projection: PostgresProjection = {
    name: definition.name,
    runBatch: async () => (await applyBatch()).applied,
    catchUp: () => catchUp(),
    rebuild: async () => {
      await transaction(`rebuild ${definition.name}`, async (client) => {
        await lockCheckpoint(client)
        if (tables.length > 0) await client.query(`TRUNCATE ${tables.join(', ')}`)
        await client.query(
          `UPDATE ${s}.projection_checkpoints SET position = 0, updated_at = now() WHERE name = $1`,
          [definition.name],
        )
      })
      // Fresh planner statistics for the events table: with stale ones (a bulk import, a restore,
      // before autovacuum gets there) PostgreSQL estimates a handful of rows after the checkpoint and
      // reads *every* later event and sorts it for each batch (bitmap scan + top-N sort), which
      // makes the replay quadratic; with them it walks the primary key in order. Best effort: a role
      // that may not ANALYZE still rebuilds.
      await pool.query(`ANALYZE ${s}.events`).catch(() => undefined)
      await catchUp(definition.rebuildBatchSize ?? batchSize)
    },
    position: async () => {
      const r = await pool.query<{ position: string }>(
        `SELECT position FROM ${s}.projection_checkpoints WHERE name = $1`,
        [definition.name],
      )
      return BigInt(r.rows[0]?.position ?? '0')
    },
    start: (options = {}) => {
      if (running !== undefined) return
      stopping = false
      running = (async () => {
        while (!stopping) {
          const { applied } = await applyBatch()
          if (applied < batchSize && !stopping) await sleep(options.pollIntervalMs ?? 100)
        }
      })().catch((error: unknown) => {
        if (!stopping) options.onError?.(error)
      })
    },
    stop: async () => {
      stopping = true
      await running
      running = undefined
    },
  }
  store.onClose(projection.stop)
  const registry = registries.get(store) ?? new Map<string, PostgresProjection>()
  registry.set(definition.name, projection)
  registries.set(store, registry)
  return projection
}

/** Rebuilds the projection called `name` created on `store` (truncate + replay from 0). */
export const rebuildProjection = async (store: PostgresEventStore, name: string): Promise<void> => {
  const projection = registries.get(store)?.get(name)
  if (projection === undefined) {
    throw new PostgresStoreError({
      _tag: 'InvalidAppend',
      message: `no projection named ${name} on this store`,
    })
  }
  await projection.rebuild()
}
