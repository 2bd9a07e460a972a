import { expected, type StreamId } from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { PostgresStoreError } from './errors.js'
import { createPostgresEventStore } from './event-store.js'
import { LATEST_SCHEMA_VERSION, migrate } from './migrations.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

let db: TestDatabase
let pool: pg.Pool
beforeAll(async () => {
  db = await createTestDatabase()
  pool = new pg.Pool({ connectionString: db.url })
})
afterAll(async () => {
  await pool?.end()
  await db?.drop()
})

const versions = async (schema: string) =>
  (
    await pool.query<{ version: number }>(
      `SELECT version FROM "${schema}".schema_migrations ORDER BY version`,
    )
  ).rows.map((r) => r.version)

it('applies every migration once; a second run applies nothing', async () => {
  const first = await migrate(pool, { schema: 'twice' })
  const second = await migrate(pool, { schema: 'twice' })
  expect(first.applied).toEqual(Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1))
  expect(second.applied).toEqual([])
  expect(await versions('twice')).toEqual(first.applied)
})

it('two pools migrating the same fresh schema at once leave one correct schema', async () => {
  const other = new pg.Pool({ connectionString: db.url })
  try {
    const results = await Promise.all([
      migrate(pool, { schema: 'racing' }),
      migrate(other, { schema: 'racing' }),
      migrate(pool, { schema: 'racing' }),
    ])
    expect(results.flatMap((r) => r.applied).sort()).toEqual(
      Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
    )
    expect(await versions('racing')).toEqual(Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1))
    const functions = await pool.query(
      `SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'racing' AND p.proname = 'append_events'`,
    )
    expect(functions.rowCount).toBe(1)
  } finally {
    await other.end()
  }
})

it('refuses a database whose schema is newer than the code with StoreUnavailable/schema', async () => {
  await migrate(pool, { schema: 'future' })
  await pool.query(
    `INSERT INTO "future".schema_migrations (version, name) VALUES ($1, 'from a newer release')`,
    [LATEST_SCHEMA_VERSION + 1],
  )
  const error = await createPostgresEventStore({ pool, schema: 'future' }).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(PostgresStoreError)
  expect((error as PostgresStoreError).error).toMatchObject({ _tag: 'StoreUnavailable', reason: 'schema' })
  expect((error as PostgresStoreError).message).toContain(`version ${LATEST_SCHEMA_VERSION + 1}`)
})

it('refuses an unsafe schema name before touching the database', async () => {
  await expect(migrate(pool, { schema: 'x"; DROP TABLE y; --' })).rejects.toBeInstanceOf(PostgresStoreError)
})

it('without migrations, opening a store on a missing schema is StoreUnavailable/schema', async () => {
  const error = await createPostgresEventStore({ pool, schema: 'never_migrated', migrate: false }).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect((error as PostgresStoreError).error).toMatchObject({ _tag: 'StoreUnavailable', reason: 'schema' })
})

it('upgrades a version-1 database with events in place: versions, idempotency and conflicts carry over', async () => {
  const schema = 'upgrade_v1'
  expect((await migrate(pool, { schema, upTo: 1 })).version).toBe(1)
  const event = (id: string) => ({ id, type: 'Noted', schemaVersion: 1, data: { id }, metadata: {} })
  // Written by the version-1 append function (streams table, row lock).
  for (const [i, id] of ['a1', 'a2', 'a3'].entries()) {
    const r = await pool.query(
      `SELECT status FROM "${schema}".append_events('note-a', 'exact', $1, $2::json)`,
      [i, JSON.stringify([event(id)])],
    )
    expect(r.rows[0].status).toBe('ok')
  }
  const result = await migrate(pool, { schema })
  expect(result.applied).toEqual(Array.from({ length: LATEST_SCHEMA_VERSION - 1 }, (_, i) => i + 2))
  const store = await createPostgresEventStore({ pool, schema })
  try {
    const streamId = 'note-a' as StreamId
    expect(await store.streamVersion(streamId)()).toEqual(E.right(3))
    const stale = await store.append({
      streamId,
      expected: expected.exact(2),
      events: [event('a4') as never],
    })()
    expect(stale).toMatchObject(E.left({ _tag: 'WrongExpectedVersion', actual: 3 }))
    const again = await store.append({
      streamId,
      expected: expected.exact(2),
      events: [event('a3') as never],
    })()
    expect(E.isRight(again) && again.right.version).toBe(3)
    const next = await store.append({
      streamId,
      expected: expected.exact(3),
      events: [event('a4') as never],
    })()
    expect(E.isRight(next) && next.right.version).toBe(4)
    const view = await pool.query(`SELECT version FROM "${schema}".streams WHERE stream_id = 'note-a'`)
    expect(view.rows).toEqual([{ version: 4 }])
    expect((await store.readStream(streamId)()) as E.Right<readonly { id: string }[]>).toMatchObject(
      E.right([{ id: 'a1' }, { id: 'a2' }, { id: 'a3' }, { id: 'a4' }]),
    )
  } finally {
    await store.close()
  }
})
