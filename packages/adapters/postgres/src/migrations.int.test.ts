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
