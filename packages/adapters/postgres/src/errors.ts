import type { StoreError } from '@referrals/core'
import type pg from 'pg'

/**
 * Thrown (never returned) where the port has no `Either`: opening a store, running migrations,
 * subscriptions and projections. Carries the same `StoreError` the `TaskEither` paths return.
 */
export class PostgresStoreError extends Error {
  readonly error: StoreError
  constructor(error: StoreError) {
    super(error.message)
    this.name = 'PostgresStoreError'
    this.error = error
  }
}

interface PgLikeError {
  readonly code?: unknown
  readonly errno?: unknown
  readonly address?: unknown
  readonly port?: unknown
  readonly message?: unknown
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EHOSTUNREACH',
  'EPIPE',
])

/**
 * Maps a `pg` or socket error to a `StoreError`. PostgreSQL's own messages are never copied: they
 * can quote row values (a unique violation names the key, a cast error names the text). Only the
 * SQLSTATE or socket code is kept, and the host/port of a refused connection (never credentials).
 */
export const toStoreError = (error: unknown, operation: string): StoreError => {
  if (error instanceof PostgresStoreError) return error.error
  const e = (typeof error === 'object' && error !== null ? error : {}) as PgLikeError
  const code = typeof e.code === 'string' ? e.code : undefined
  const message = typeof e.message === 'string' ? e.message : ''
  if (code !== undefined && CONNECTION_CODES.has(code)) {
    const where =
      typeof e.address === 'string' ? ` at ${e.address}${typeof e.port === 'number' ? `:${e.port}` : ''}` : ''
    return {
      _tag: 'StoreUnavailable',
      reason: 'unavailable',
      message: `${operation}: PostgreSQL unreachable${where} (${code})`,
    }
  }
  if (
    code === 'ETIMEDOUT' ||
    /timeout exceeded when trying to connect|Connection terminated due to connection timeout/i.test(message)
  ) {
    return {
      _tag: 'StoreUnavailable',
      reason: 'timeout',
      message: `${operation}: timed out connecting to PostgreSQL`,
    }
  }
  if (
    /Connection terminated|Client has encountered a connection error|Cannot use a pool after calling end/i.test(
      message,
    )
  ) {
    return {
      _tag: 'StoreUnavailable',
      reason: 'unavailable',
      message: `${operation}: PostgreSQL connection lost or closed`,
    }
  }
  switch (code) {
    case '57014':
      return {
        _tag: 'StoreUnavailable',
        reason: 'timeout',
        message: `${operation}: statement timed out (57014)`,
      }
    case '28P01':
    case '28000':
    case '42501':
      return {
        _tag: 'StoreUnavailable',
        reason: 'access_denied',
        message: `${operation}: access denied (${code})`,
      }
    case '3D000':
      return {
        _tag: 'StoreUnavailable',
        reason: 'unavailable',
        message: `${operation}: database does not exist (3D000)`,
      }
    case '42P01':
    case '42883':
    case '3F000':
      return {
        _tag: 'StoreUnavailable',
        reason: 'schema',
        message: `${operation}: event store schema missing or outdated (${code}); run migrations`,
      }
    case '57P01':
    case '57P02':
    case '57P03':
    case '53300':
      return {
        _tag: 'StoreUnavailable',
        reason: 'unavailable',
        message: `${operation}: PostgreSQL not accepting connections (${code})`,
      }
  }
  return {
    _tag: 'StoreUnavailable',
    reason: 'unknown',
    message: `${operation}: PostgreSQL error${code === undefined ? '' : ` (${code})`}`,
  }
}

/** SQLSTATEs after which re-running the same statement can succeed. */
export const isRetryable = (error: unknown): boolean => {
  const code = (error as PgLikeError | null)?.code
  return code === '23505' || code === '40001' || code === '40P01'
}

export interface CheckedOutClient {
  readonly client: pg.PoolClient
  /** The error the connection reported while checked out, if any. */
  readonly failure: () => unknown
  /** Returns the client to the pool (destroying it if asked or if its connection failed). */
  readonly release: (destroy?: boolean) => void
}

/**
 * `pool.connect()` with an 'error' listener for as long as the client is checked out: pg-pool
 * removes its own listener on checkout, and a connection terminated between two queries would
 * otherwise raise an unhandled 'error' event and end the process.
 */
export const checkout = async (pool: pg.Pool): Promise<CheckedOutClient> => {
  const client = await pool.connect()
  let failure: unknown
  const onError = (error: unknown) => {
    failure = error
  }
  client.on('error', onError)
  return {
    client,
    failure: () => failure,
    release: (destroy = false) => {
      client.removeListener('error', onError)
      client.release(destroy || failure !== undefined)
    },
  }
}
