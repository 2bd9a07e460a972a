import { expected, type StreamId, unsafeId } from '@referrals/core'
import type pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPostgresEventStore, type PostgresEventStore } from './event-store.js'
import {
  createPostgresProjection,
  type PostgresProjectionDefinition,
  rebuildProjection,
} from './projection.js'
import { newEvent, ok, uniqueCategory } from './testing/fixtures.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

let db: TestDatabase
let store: PostgresEventStore
beforeAll(async () => {
  db = await createTestDatabase()
  store = await createPostgresEventStore({ connectionString: db.url })
})
afterAll(async () => {
  await store?.close()
  await db?.drop()
})

/** Counts events per stream category (the part of the stream id before the first '-'). */
const countsDefinition = (
  name: string,
  prefixes: readonly string[],
  handle?: PostgresProjectionDefinition['handle'],
): PostgresProjectionDefinition => ({
  name,
  streamPrefixes: prefixes,
  batchSize: 4,
  tables: {
    [`${name}_counts`]: `CREATE TABLE IF NOT EXISTS ${name}_counts (category text PRIMARY KEY, n integer NOT NULL)`,
  },
  handle:
    handle ??
    (async (event, client: pg.PoolClient) => {
      await client.query(
        `INSERT INTO ${name}_counts (category, n) VALUES ($1, 1)
         ON CONFLICT (category) DO UPDATE SET n = ${name}_counts.n + 1`,
        [event.streamId.split('-')[0]],
      )
    }),
})

const counts = async (name: string) =>
  Object.fromEntries(
    (
      await store.pool.query<{ category: string; n: number }>(`SELECT category, n FROM ${name}_counts`)
    ).rows.map((r) => [r.category, r.n]),
  )

const appendTo = (category: string, n: number) =>
  ok(
    store.append({
      streamId: unsafeId<StreamId>(`${category}-1`),
      expected: expected.any,
      events: Array.from({ length: n }, () => newEvent()),
    }),
  )

it('applies each event exactly once, also with two workers racing, and rebuilds to the same state', async () => {
  const [a, b] = [uniqueCategory(), uniqueCategory()]
  const name = `p${uniqueCategory()}`
  await appendTo(a, 7)
  await appendTo(b, 3)
  const definition = countsDefinition(name, [`${a}-`, `${b}-`])
  const projection = await createPostgresProjection(store, definition)
  // A second process is simulated by a second store with its own pool.
  const other = await createPostgresEventStore({ connectionString: db.url })
  try {
    const second = await createPostgresProjection(other, definition)
    await Promise.all([projection.catchUp(), second.catchUp(), projection.catchUp()])
    expect(await counts(name)).toEqual({ [a]: 7, [b]: 3 })
    await appendTo(a, 2)
    await Promise.all([projection.catchUp(), second.catchUp()])
    expect(await counts(name)).toEqual({ [a]: 9, [b]: 3 })
  } finally {
    await other.close()
  }
  const position = await projection.position()
  expect(position > 0n).toBe(true)

  await store.pool.query(`UPDATE ${name}_counts SET n = 999`)
  await rebuildProjection(store, name)
  expect(await counts(name)).toEqual({ [a]: 9, [b]: 3 })
  expect(await projection.position()).toBe(position)
})

it('a failing handler rolls back the rows and the checkpoint of its batch together', async () => {
  const cat = uniqueCategory()
  const name = `p${uniqueCategory()}`
  await appendTo(cat, 3)
  let calls = 0
  const base = countsDefinition(name, [`${cat}-`])
  const flaky = await createPostgresProjection(store, {
    ...base,
    handle: async (event, client) => {
      calls++
      if (calls === 2) throw new Error('handler broke')
      await base.handle(event, client)
    },
  })
  await expect(flaky.catchUp()).rejects.toThrow('handler broke')
  expect(await counts(name)).toEqual({})
  expect(await flaky.position()).toBe(0n)
  await flaky.catchUp()
  expect(await counts(name)).toEqual({ [cat]: 3 })
})

it('runs in the background until stopped', async () => {
  const cat = uniqueCategory()
  const name = `p${uniqueCategory()}`
  const projection = await createPostgresProjection(store, countsDefinition(name, [`${cat}-`]))
  const errors: unknown[] = []
  projection.start({ pollIntervalMs: 10, onError: (e) => errors.push(e) })
  await appendTo(cat, 5)
  for (let i = 0; i < 200 && (await counts(name))[cat] !== 5; i++) await new Promise((r) => setTimeout(r, 10))
  await projection.stop()
  expect(await counts(name)).toEqual({ [cat]: 5 })
  expect(errors).toEqual([])
})

it('closing the store stops its running projections without reporting errors', async () => {
  const own = await createPostgresEventStore({ connectionString: db.url })
  const cat = uniqueCategory()
  const projection = await createPostgresProjection(
    own,
    countsDefinition(`p${uniqueCategory()}`, [`${cat}-`]),
  )
  const errors: unknown[] = []
  projection.start({ pollIntervalMs: 5, onError: (e) => errors.push(e) })
  await new Promise((r) => setTimeout(r, 50))
  await own.close()
  await new Promise((r) => setTimeout(r, 50))
  expect(errors).toEqual([])
})
