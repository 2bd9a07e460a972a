import {
  type AppendManyOptions,
  type AppendRequest,
  type AppendResult,
  type CheckpointStore,
  checkRequestShape,
  describeExpected,
  type EventStore,
  type GlobalPosition,
  type Instant,
  type ReadAllOptions,
  type ReadStreamOptions,
  refusedCompanion,
  type StoredEvent,
  type StoreError,
  StreamId,
  type SubscribeOptions,
  type Subscription,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import pg from 'pg'
import { createPostgresCheckpointStore } from './checkpoints.js'
import { companionStatements, type PostgresCompanionWrite, postgresCompanionKind } from './companion.js'
import { isRetryable, PostgresStoreError, toStoreError } from './errors.js'
import { DEFAULT_SCHEMA, migrate, POSITION_TX_SHIFT, quoteSchema } from './migrations.js'
import { startSubscription } from './subscription.js'

/*
 * Global order — why a reader resuming after the last position it saw never skips an event.
 *
 * Sequences are not commit-ordered: a transaction can draw position 7, another draws 8 and commits
 * first; a reader that saw 8 and resumes "after 8" would never see 7. So positions are not drawn
 * from a sequence. Each append first forces its transaction id (`pg_current_xact_id()`, an xid8
 * that is never reused) and numbers its events
 *
 *     position = transaction_id * 2^16 + ordinal      (ordinal = 0.. within the transaction)
 *
 * which is ordering by (transaction_id, ordinal). `readAll` only returns events whose transaction
 * id is below `xmin = pg_snapshot_xmin(pg_current_snapshot())`, i.e. `position < xmin * 2^16`.
 *
 * Claim: if a read at time T returned an event at position p, every event that becomes readable
 * after T has a position > p.
 *  1. Every transaction id below xmin(T) has finished (committed or aborted) at T: xmin is the
 *     oldest transaction still running. So the set of readable events below xmin(T) * 2^16 is
 *     final at T — nothing is ever added below that bound again.
 *  2. An event not readable at T belongs to a transaction that was running at T (its id >= xmin(T)
 *     by definition of xmin) or that got its id after T (ids are handed out increasing, and
 *     xmin(T) <= the next id at T). Either way its id >= xmin(T), so its position
 *     >= xmin(T) * 2^16 > p.
 *  3. xmin never decreases, so the bound only moves forward.
 * Hence readers can keep a single bigint cursor. The cost: an event becomes readable only once
 * every transaction older than it has finished, so one long transaction anywhere in the cluster
 * delays (never reorders) delivery. Positions are huge numbers with gaps; they are only compared.
 */

export interface PostgresEventStoreOptions {
  /** An existing pool (not closed by `close()`), or a connection string (the store owns the pool). */
  readonly pool?: pg.Pool
  readonly connectionString?: string
  /** Schema holding the store's tables; default `referrals`. */
  readonly schema?: string
  /** Per-statement timeout for connections of a pool the store creates; default 30 s. */
  readonly statementTimeoutMs?: number
  /** Size of a pool the store creates; default 10. */
  readonly poolSize?: number
  /** How long to wait for a connection; default 10 s. */
  readonly connectionTimeoutMs?: number
  /** Run migrations when opening; default true. */
  readonly migrate?: boolean
  /** How often an idle subscription polls for events written by other processes; default 100 ms. */
  readonly pollIntervalMs?: number
  /**
   * Wake subscriptions in other processes at once with LISTEN/NOTIFY (channel
   * `referrals_events_<schema>`). Off by default: NOTIFY takes a cluster-wide lock at commit, which
   * serialises concurrent appends; polling alone delivers within `pollIntervalMs`. Appends made
   * through the same store object always wake its own subscriptions immediately.
   */
  readonly notify?: boolean
  /** Where subscriptions keep checkpoints; default the `checkpoints` table of this schema. */
  readonly checkpoints?: CheckpointStore
}

export interface PostgresEventStore extends EventStore {
  readonly pool: pg.Pool
  readonly schema: string
  /** Reads everything after `after` that is safe to read, plus the bound it was read under. */
  readonly readAllWithHorizon: (
    queryable: pg.Pool | pg.PoolClient,
    options: ReadAllOptions,
  ) => Promise<{ readonly events: readonly StoredEvent[]; readonly horizon: GlobalPosition }>
  /** Highest position written so far (0n when empty), whatever its visibility. */
  readonly lastPosition: () => Promise<GlobalPosition>
  /** Registers work `close()` awaits before ending the pool (used by projections to stop). */
  readonly onClose: (stop: () => Promise<void>) => void
}

interface EventRow {
  readonly global_position: string
  readonly stream_id: string
  readonly version: number
  readonly event_id: string
  readonly type: string
  readonly schema_version: number
  readonly data: unknown
  readonly metadata: unknown
  readonly recorded_at: Date
}

const COLUMNS =
  'global_position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at'

/** A prefix that is a whole stream category: `practice-`, `referral-` (no other '-' before the end). */
const isCategoryPrefix = (prefix: string): boolean => /^[^-]+-$/.test(prefix)

/**
 * The events of streams in `count` categories (parameters $3…: the prefixes, each `<category>-`)
 * after $1 and below the horizon, in global order, at most $2: one ordered range of the
 * `events_category_position` index per category, merged (`MERGE APPEND`), so the events of other
 * categories are never read. Every stream id has a '-' after its category (`StreamId`), so the
 * category equality alone selects exactly the streams with that prefix.
 */
const categoryPrefixSql = (s: string, count: number): string =>
  `SELECT * FROM (${Array.from(
    { length: count },
    (_, i) => `(SELECT ${COLUMNS} FROM ${s}.events
         WHERE split_part(stream_id, '-', 1) = left($${i + 3}::text, -1)
           AND global_position > $1 AND global_position < h.horizon
         ORDER BY global_position LIMIT $2)`,
  ).join(' UNION ALL ')}) u ORDER BY global_position LIMIT $2`

const toStoredEvent = (row: EventRow): StoredEvent =>
  ({
    id: row.event_id,
    type: row.type,
    schemaVersion: row.schema_version,
    data: row.data,
    metadata: row.metadata,
    streamId: row.stream_id,
    version: row.version,
    globalPosition: BigInt(row.global_position),
    recordedAt: row.recorded_at.toISOString() as Instant,
  }) as StoredEvent

/** Bad input the database refused (a NUL in a string, a non-integer schema version, …). */
const INVALID_INPUT_CODES = new Set(['22P02', '22P05', '22003', '22021', '23502', '22023', '54000'])

interface AppendRow {
  readonly status: 'ok' | 'idempotent' | 'mismatch' | 'conflict' | 'too_many'
  readonly stream_version: number
  readonly last_position: string | null
}

const encodeEvents = (request: AppendRequest): E.Either<StoreError, string> => {
  try {
    const encoded = request.events.map((e) => {
      const data = JSON.stringify(e.data)
      const metadata = JSON.stringify(e.metadata)
      if (data === undefined || metadata === undefined) throw new TypeError('not JSON')
      return `{"id":${JSON.stringify(e.id)},"type":${JSON.stringify(e.type)},"schemaVersion":${JSON.stringify(e.schemaVersion)},"data":${data},"metadata":${metadata}}`
    })
    return E.right(`[${encoded.join(',')}]`)
  } catch {
    return E.left({
      _tag: 'InvalidAppend',
      message: `append to ${request.streamId}: event data or metadata is not JSON`,
    })
  }
}

const checkEnvelopes = (request: AppendRequest): E.Either<StoreError, void> => {
  const shape = checkRequestShape(request, StreamId.is)
  if (E.isLeft(shape)) return shape
  for (const e of request.events) {
    if (typeof e.id !== 'string' || typeof e.type !== 'string' || !Number.isSafeInteger(e.schemaVersion)) {
      return E.left({
        _tag: 'InvalidAppend',
        message: `append to ${request.streamId}: malformed event envelope`,
      })
    }
  }
  return E.right(undefined)
}

const validateRequest = (request: AppendRequest): E.Either<StoreError, string> => {
  const checked = checkEnvelopes(request)
  return E.isLeft(checked) ? checked : encodeEvents(request)
}

const REFUSED_PATTERN = /^(\d+) (ok|idempotent|mismatch|conflict|too_many) (-?\d+)$/

/** append_many's refusal of one request (SQLSTATE RA001): which request, why, the stream's version. */
const refusedRequest = (
  error: unknown,
): { readonly index: number; readonly status: AppendRow['status']; readonly version: number } | undefined => {
  const e = error as { code?: unknown; message?: unknown } | null
  if (e?.code !== 'RA001' || typeof e.message !== 'string') return undefined
  const m = REFUSED_PATTERN.exec(e.message)
  if (m === null) return undefined
  return { index: Number(m[1]), status: m[2] as AppendRow['status'], version: Number(m[3]) }
}

const appendRowResult = (
  request: AppendRequest,
  row: AppendRow | undefined,
): E.Either<StoreError, AppendResult> => {
  if (row === undefined)
    return E.left({ _tag: 'StoreUnavailable', reason: 'unknown', message: 'append returned no row' })
  switch (row.status) {
    case 'ok':
    case 'idempotent':
      return E.right({
        streamId: request.streamId,
        version: row.stream_version,
        position: BigInt(row.last_position ?? '0'),
      })
    case 'conflict':
      return E.left({
        _tag: 'WrongExpectedVersion',
        streamId: request.streamId,
        expected: request.expected,
        actual: row.stream_version,
        message: `stream ${request.streamId} is at version ${row.stream_version}, expected ${describeExpected(request.expected)}`,
      })
    case 'mismatch':
      return E.left({
        _tag: 'IdempotencyMismatch',
        streamId: request.streamId,
        message: `append to ${request.streamId}: some but not all event ids are already stored (or stored in another stream)`,
      })
    case 'too_many':
      return E.left({ _tag: 'InvalidAppend', message: 'one transaction may append at most 65,536 events' })
  }
}

export const createPostgresEventStore = async (
  options: PostgresEventStoreOptions = {},
): Promise<PostgresEventStore> => {
  const schema = options.schema ?? DEFAULT_SCHEMA
  const s = quoteSchema(schema)
  const ownsPool = options.pool === undefined
  const connectionString = options.connectionString ?? process.env.DATABASE_URL
  if (options.pool === undefined && connectionString === undefined) {
    throw new PostgresStoreError({
      _tag: 'StoreUnavailable',
      reason: 'unavailable',
      message: 'no database configured: pass a pool or connectionString, or set DATABASE_URL',
    })
  }
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString,
      max: options.poolSize ?? 10,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
      application_name: 'referrals',
    })
  // An idle client losing its connection must not crash the process; the next query reports it.
  if (ownsPool) pool.on('error', () => undefined)

  let companionKind: string
  try {
    if (options.migrate !== false) await migrate(pool, { schema })
    else await pool.query(`SELECT 1 FROM ${s}.events LIMIT 0`)
    companionKind = await postgresCompanionKind(pool)
  } catch (error) {
    if (ownsPool) await pool.end().catch(() => undefined)
    throw error instanceof PostgresStoreError
      ? error
      : new PostgresStoreError(toStoreError(error, 'open event store'))
  }

  const checkpoints = options.checkpoints ?? createPostgresCheckpointStore({ pool, schema })
  const wakers = new Set<() => void>()
  const wakeSubscriptions = () => {
    for (const wake of wakers) wake()
  }
  let closed = false
  const active = new Set<Subscription>()
  const closers: (() => Promise<void>)[] = []

  const attempt =
    <A>(
      operation: string,
      f: () => Promise<E.Either<StoreError, A>>,
      onPersistentConflict?: () => Promise<StoreError>,
    ): TaskEither<StoreError, A> =>
    async () => {
      for (let tries = 1; ; tries++) {
        try {
          return await f()
        } catch (error) {
          if (isRetryable(error) && tries < 10) continue
          if (isRetryable(error) && onPersistentConflict !== undefined) {
            return E.left(await onPersistentConflict().catch(() => toStoreError(error, operation)))
          }
          const code = (error as { code?: unknown } | null)?.code
          if (typeof code === 'string' && INVALID_INPUT_CODES.has(code)) {
            return E.left({
              _tag: 'InvalidAppend',
              message: `${operation}: the database refused the input (${code})`,
            })
          }
          return E.left(toStoreError(error, operation))
        }
      }
    }

  const notifyChannel = `referrals_events_${schema}`.slice(0, 63)
  // pg_notify in the same statement: delivered when, and only if, the append commits.
  const appendSql =
    options.notify === true
      ? `SELECT a.status, a.stream_version, a.last_position, pg_notify('${notifyChannel}', '') AS notified
         FROM ${s}.append_events($1, $2, $3, $4::json) AS a`
      : `SELECT status, stream_version, last_position FROM ${s}.append_events($1, $2, $3, $4::json)`
  const appendParams = (request: AppendRequest, events: string) => [
    request.streamId,
    request.expected.kind,
    request.expected.kind === 'exact' ? request.expected.version : null,
    events,
  ]
  // A named statement is parsed and planned once per connection; later appends send only Bind
  // and Execute (still one round trip).
  const appendStatement = `referrals.append${options.notify === true ? '.notify' : ''}.${schema}`
  const appendQuery = (request: AppendRequest, events: string): pg.QueryConfig => ({
    name: appendStatement,
    text: appendSql,
    values: appendParams(request, events),
  })
  // appendMany: one statement, so one round trip and an implicit transaction (see append_many).
  const appendManySql =
    options.notify === true
      ? `SELECT a.status, a.stream_version, a.last_position, pg_notify('${notifyChannel}', '') AS notified
         FROM ${s}.append_many($1::text[], $2::text[], $3::integer[], $4::json[]) AS a`
      : `SELECT status, stream_version, last_position FROM ${s}.append_many($1::text[], $2::text[], $3::integer[], $4::json[])`
  const appendManyStatement = `referrals.append_many${options.notify === true ? '.notify' : ''}.${schema}`
  /*
   * The one-statement path of a single-event append at a known version (`no_stream`, `exact(n)`):
   * a plain INSERT of version n + 1, nothing else. What `append_events` adds to one insert — the
   * PL/pgSQL call (≈ 7 statements), the stream lock, the version and idempotency probes — is left
   * to the indexes that exist anyway: (stream_id, version) refuses a taken version and event_id a
   * stored id (23505), and only then is `append_events` asked what happened (conflict, idempotent,
   * mismatch; a second round trip on that path only). `exact(n ≥ 1)` also needs version n to exist:
   * one probe of the same index.
   *
   * Why the global order still holds without the stream lock (see the proof at the top): the
   * statement runs only as its transaction's first write — `pg_current_xact_id_if_assigned() IS
   * NULL`, else it inserts nothing and `append_events` takes over — so its transaction id is drawn
   * during the statement, after its snapshot. A version n it sees was committed before that
   * snapshot, so its writer's id is smaller: the stream's versions stay in position order. A
   * version n+1 it does not see (running, or committed after the snapshot) makes the unique index
   * refuse the insert. Its ordinal is 0; `tx_ordinal` is set for a later append in the same
   * transaction. `pg_notify` (option `notify`) is part of RETURNING, so it is only sent for an insert.
   */
  const fastAppendSql = `INSERT INTO ${s}.events (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
     SELECT pg_current_xact_id()::text::bigint << ${POSITION_TX_SHIFT}, pg_current_xact_id(), $1, $2::integer + 1, $3, $4, $5, $6::json, $7::json
      WHERE pg_current_xact_id_if_assigned() IS NULL
        AND ($2::integer = 0 OR EXISTS (SELECT 1 FROM ${s}.events ev WHERE ev.stream_id = $1 AND ev.version = $2::integer))
     RETURNING version, global_position::text AS last_position, set_config('referrals.tx_ordinal', '1', true) AS ordinal${
       options.notify === true ? `, pg_notify('${notifyChannel}', '') AS notified` : ''
     }`
  const fastAppendStatement = `referrals.append_one${options.notify === true ? '.notify' : ''}.${schema}`
  /** The single-event request the one-statement path takes, with its event's data and metadata as JSON. */
  const fastAppendQuery = (request: AppendRequest): pg.QueryConfig | undefined => {
    const event = request.events.length === 1 ? request.events[0] : undefined
    if (event === undefined) return undefined
    // New streams only for now: on one hot stream appended with exact(n) by many writers, every
    // loser would wait for the winner's commit on the unique index and then ask `append_events`
    // (two waits instead of one under the stream lock).
    if (request.expected.kind !== 'no_stream') return undefined
    const version = 0
    const data = JSON.stringify(event.data)
    const metadata = JSON.stringify(event.metadata)
    if (data === undefined || metadata === undefined) return undefined
    return {
      name: fastAppendStatement,
      text: fastAppendSql,
      values: [request.streamId, version, event.id, event.type, event.schemaVersion, data, metadata],
    }
  }

  // The stream's version is its last event's: one backward probe of the (stream_id, version) index.
  const versionSql = `SELECT version FROM ${s}.events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1`

  /** After repeated unique-violation/serialisation failures: report the stream's actual version. */
  const conflictOf = (request: AppendRequest) => async (): Promise<StoreError> => {
    const r = await pool.query<{ version: number }>(versionSql, [request.streamId])
    const actual = r.rows[0]?.version ?? 0
    return {
      _tag: 'WrongExpectedVersion',
      streamId: request.streamId,
      expected: request.expected,
      actual,
      message: `stream ${request.streamId} is at version ${actual}, expected ${describeExpected(request.expected)} (concurrent append)`,
    }
  }

  const append = (request: AppendRequest): TaskEither<StoreError, AppendResult> => {
    const checked = checkEnvelopes(request)
    if (E.isLeft(checked)) return async () => checked
    const fastQuery = fastAppendQuery(request)
    return async () => {
      let fast = fastQuery
      return attempt(
        'append',
        async () => {
          if (fast !== undefined) {
            const query = fast
            // Tried once: after a refusal the locking path decides, also on its retries.
            fast = undefined
            try {
              const r = await pool.query<{ version: number; last_position: string }>(query)
              const row = r.rows[0]
              if (row !== undefined) {
                wakeSubscriptions()
                return E.right({
                  streamId: request.streamId,
                  version: row.version,
                  position: BigInt(row.last_position),
                })
              }
            } catch (error) {
              if ((error as { code?: unknown } | null)?.code !== '23505') throw error
            }
          }
          const valid = encodeEvents(request)
          if (E.isLeft(valid)) return valid
          const r = await pool.query<AppendRow>(appendQuery(request, valid.right))
          const result = appendRowResult(request, r.rows[0])
          if (E.isRight(result) && r.rows[0]?.status === 'ok') wakeSubscriptions()
          return result
        },
        conflictOf(request),
      )()
    }
  }

  /*
   * appendMany with companion writes (`PostgresCompanionWrite`): still one statement, so one round
   * trip and one implicit transaction. The append is the materialised CTE `appended`; each
   * companion statement is a data-modifying CTE that reads it, so it runs after the append (once
   * its stream locks are held and its transaction id drawn) and commits or rolls back with it.
   */
  const companionSql = new Map<string, string>()
  const companionQuery = (
    values: readonly unknown[],
    companions: readonly PostgresCompanionWrite[],
  ): pg.QueryConfig | string => {
    const extra = companionStatements(companions, values.length + 1)
    if (typeof extra === 'string') return extra
    const text = `WITH appended AS MATERIALIZED (SELECT status, stream_version, last_position FROM ${s}.append_many($1::text[], $2::text[], $3::integer[], $4::json[])),
      ${extra.ctes.join(',\n      ')}
      SELECT a.status, a.stream_version, a.last_position${
        options.notify === true ? `, pg_notify('${notifyChannel}', '') AS notified` : ''
      } FROM appended AS a`
    // Named per distinct text (a handful: one per companion statement kind), parsed once per connection.
    let name = companionSql.get(text)
    if (name === undefined && companionSql.size < 64) {
      name = `referrals.append_many.c${companionSql.size}${options.notify === true ? '.notify' : ''}.${schema}`
      companionSql.set(text, name)
    }
    return { ...(name === undefined ? {} : { name }), text, values: [...values, ...extra.values] }
  }

  const appendMany = (
    requests: readonly AppendRequest[],
    manyOptions: AppendManyOptions = {},
  ): TaskEither<StoreError, readonly AppendResult[]> => {
    const refused = refusedCompanion(manyOptions.companions, [companionKind])
    if (refused !== undefined) return async () => E.left(refused)
    const companions = (manyOptions.companions ?? []) as readonly PostgresCompanionWrite[]
    const encoded: string[] = []
    for (const request of requests) {
      const valid = validateRequest(request)
      if (E.isLeft(valid)) return async () => valid
      encoded.push(valid.right)
    }
    if (requests.length === 0) return async () => E.right([])
    if (new Set(requests.map((r) => r.streamId)).size !== requests.length) {
      return async () =>
        E.left({ _tag: 'InvalidAppend', message: 'appendMany takes at most one request per stream' })
    }
    // Lock streams in one global order so two multi-stream appends cannot deadlock each other.
    const order = requests
      .map((_, i) => i)
      .sort((a, b) => {
        const sa = (requests[a] as AppendRequest).streamId
        const sb = (requests[b] as AppendRequest).streamId
        return sa < sb ? -1 : sa > sb ? 1 : a - b
      })
    const sorted = order.map((i) => requests[i] as AppendRequest)
    const values = [
      sorted.map((r) => r.streamId),
      sorted.map((r) => r.expected.kind),
      sorted.map((r) => (r.expected.kind === 'exact' ? r.expected.version : null)),
      order.map((i) => encoded[i] as string),
    ]
    const query =
      companions.length === 0
        ? { name: appendManyStatement, text: appendManySql, values }
        : companionQuery(values, companions)
    if (typeof query === 'string')
      return async () => E.left({ _tag: 'InvalidAppend', message: `appendMany: ${query}` })
    return attempt('appendMany', async () => {
      let rows: AppendRow[]
      try {
        rows = (await pool.query<AppendRow>(query)).rows
      } catch (error) {
        const refused = refusedRequest(error)
        if (refused === undefined) throw error
        const request = sorted[refused.index - 1]
        const left =
          request === undefined
            ? undefined
            : appendRowResult(request, {
                status: refused.status,
                stream_version: refused.version,
                last_position: null,
              })
        if (left !== undefined && E.isLeft(left)) return left
        throw error
      }
      const results: AppendResult[] = new Array(requests.length)
      for (const [k, i] of order.entries()) {
        const result = appendRowResult(requests[i] as AppendRequest, rows[k])
        if (E.isLeft(result)) return result
        results[i] = result.right
      }
      wakeSubscriptions()
      return E.right(results)
    })
  }

  const readStream = (
    streamId: StreamId,
    options: ReadStreamOptions = {},
  ): TaskEither<StoreError, readonly StoredEvent[]> => {
    const backward = options.direction === 'backward'
    const from = options.fromVersion ?? (backward ? 2_147_483_647 : 1)
    const max = options.maxCount
    if (!Number.isSafeInteger(from) || (max !== undefined && !(Number.isSafeInteger(max) && max >= 0))) {
      return async () =>
        E.left({ _tag: 'InvalidAppend', message: 'readStream: fromVersion and maxCount must be integers' })
    }
    const bounded = Math.max(-1, Math.min(from, 2_147_483_647))
    return attempt('readStream', async () => {
      const r = await pool.query<EventRow>(
        `SELECT ${COLUMNS} FROM ${s}.events WHERE stream_id = $1 AND version ${backward ? '<=' : '>='} $2
         ORDER BY version ${backward ? 'DESC' : 'ASC'} LIMIT $3`,
        [streamId, bounded, max ?? null],
      )
      return E.right(r.rows.map(toStoredEvent))
    })
  }

  const readAllWithHorizon = async (queryable: pg.Pool | pg.PoolClient, options: ReadAllOptions) => {
    const after = options.after ?? 0n
    const max = options.maxCount
    if (typeof after !== 'bigint' || (max !== undefined && !(Number.isSafeInteger(max) && max >= 0))) {
      throw new PostgresStoreError({
        _tag: 'InvalidAppend',
        message: 'readAll: after must be a bigint, maxCount an integer',
      })
    }
    const prefixes = options.streamPrefixes === undefined ? null : [...options.streamPrefixes]
    const byCategory = prefixes !== null && prefixes.length > 0 && prefixes.every(isCategoryPrefix)
    const r = await queryable.query<{ horizon: string } & Partial<EventRow>>(
      `WITH h AS (SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << ${POSITION_TX_SHIFT}) AS horizon)
       SELECT h.horizon, e.* FROM h LEFT JOIN LATERAL (${
         byCategory
           ? categoryPrefixSql(s, prefixes.length)
           : `SELECT ${COLUMNS} FROM ${s}.events
         WHERE global_position > $1 AND global_position < h.horizon
           AND ($3::text[] IS NULL OR stream_id ^@ ANY ($3::text[]))
         ORDER BY global_position LIMIT $2`
       }) e ON true`,
      byCategory ? [after.toString(), max ?? null, ...prefixes] : [after.toString(), max ?? null, prefixes],
    )
    const horizon = BigInt(r.rows[0]?.horizon ?? '0')
    const events = r.rows
      .filter((row) => row.global_position != null)
      .map((row) => toStoredEvent(row as EventRow))
    return { events, horizon }
  }

  const readAll = (options: ReadAllOptions = {}): TaskEither<StoreError, readonly StoredEvent[]> =>
    attempt('readAll', async () => E.right((await readAllWithHorizon(pool, options)).events))

  const streamVersion = (streamId: StreamId): TaskEither<StoreError, number> =>
    attempt('streamVersion', async () => {
      const r = await pool.query<{ version: number }>(versionSql, [streamId])
      return E.right(r.rows[0]?.version ?? 0)
    })

  const lastPosition = async (): Promise<GlobalPosition> => {
    const r = await pool.query<{ position: string | null }>(
      `SELECT max(global_position) AS position FROM ${s}.events`,
    )
    return BigInt(r.rows[0]?.position ?? '0')
  }

  const store: PostgresEventStore = {
    pool,
    schema,
    readAllWithHorizon,
    lastPosition,
    onClose: (stop) => {
      closers.push(stop)
    },
    capabilities: { atomicMultiStreamAppend: true, companionKinds: [companionKind] },
    append,
    appendMany,
    readStream,
    readAll,
    streamVersion,
    subscribe: (subscribeOptions: SubscribeOptions): Subscription => {
      const subscription = startSubscription(
        {
          pool,
          schema,
          checkpoints,
          pollIntervalMs: options.pollIntervalMs ?? 100,
          notifyChannel: options.notify === true ? notifyChannel : undefined,
          read: (after, maxCount, streamPrefixes) =>
            readAllWithHorizon(
              pool,
              streamPrefixes === undefined ? { after, maxCount } : { after, maxCount, streamPrefixes },
            ),
          lastPosition,
          registerWaker: (wake) => {
            wakers.add(wake)
            return () => wakers.delete(wake)
          },
          onStopped: () => active.delete(subscription),
        },
        subscribeOptions,
      )
      active.add(subscription)
      return subscription
    },
    close: async () => {
      if (closed) return
      closed = true
      await Promise.all([...active].map((sub) => sub.stop()))
      await Promise.all(closers.map((stop) => stop().catch(() => undefined)))
      if (ownsPool) await pool.end()
    },
  }
  return store
}
