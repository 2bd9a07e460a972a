import { expected, type StoredEvent, type StreamId, unsafeId } from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresCheckpointStore } from './checkpoints.js'
import { PostgresStoreError, toStoreError } from './errors.js'
import { createPostgresEventStore, type PostgresEventStore } from './event-store.js'
import { fail, newEvent, ok, testMetadata, uniqueCategory } from './testing/fixtures.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

let db: TestDatabase
let store: PostgresEventStore
beforeAll(async () => {
  db = await createTestDatabase()
  store = await createPostgresEventStore({ connectionString: db.url, poolSize: 30 })
})
afterAll(async () => {
  await store?.close()
  await db?.drop()
})

const stream = (category: string, id: string | number) => unsafeId<StreamId>(`${category}-${id}`)

describe('concurrency', () => {
  it('50 writers doing read-then-append with exact lose no update and never duplicate a version', async () => {
    const s = stream(uniqueCategory(), 'counter')
    const attemptsPerWriter = 200
    let successes = 0
    let conflicts = 0
    const writer = async () => {
      for (let i = 0; i < attemptsPerWriter; i++) {
        const last = await ok(store.readStream(s, { direction: 'backward', maxCount: 1 }))
        const version = last[0]?.version ?? 0
        const counter = (last[0]?.data as { counter?: number } | undefined)?.counter ?? 0
        const r = await store.append({
          streamId: s,
          expected: expected.exact(version),
          events: [newEvent('Incremented', { counter: counter + 1 })],
        })()
        if (E.isRight(r)) successes++
        else if (r.left._tag === 'WrongExpectedVersion') conflicts++
        else throw new Error(`unexpected ${r.left._tag}`)
      }
    }
    await Promise.all(Array.from({ length: 50 }, writer))
    const events = await ok(store.readStream(s))
    expect(successes + conflicts).toBe(50 * attemptsPerWriter)
    expect(successes).toBeGreaterThan(0)
    expect(events).toHaveLength(successes)
    expect(await ok(store.streamVersion(s))).toBe(successes)
    // Each success read the counter it incremented: a lost update would repeat a counter value.
    expect(events.map((e) => (e.data as { counter: number }).counter)).toEqual(
      Array.from({ length: successes }, (_, i) => i + 1),
    )
    expect(events.map((e) => e.version)).toEqual(Array.from({ length: successes }, (_, i) => i + 1))
  })

  it('100 concurrent no_stream creates: exactly one succeeds, the rest see version 1', async () => {
    const s = stream(uniqueCategory(), 'new')
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        store.append({ streamId: s, expected: expected.noStream, events: [newEvent('Created', { i })] })(),
      ),
    )
    expect(results.filter(E.isRight)).toHaveLength(1)
    for (const r of results.filter(E.isLeft))
      expect(r.left).toMatchObject({ _tag: 'WrongExpectedVersion', actual: 1 })
    expect(await ok(store.readStream(s))).toHaveLength(1)
  })

  it('concurrent appendMany calls over the same streams in opposite orders do not deadlock', async () => {
    const cat = uniqueCategory()
    const [a, b] = [stream(cat, 'a'), stream(cat, 'b')]
    const rounds = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        ok(
          store.appendMany(
            (i % 2 === 0 ? [a, b] : [b, a]).map((streamId) => ({
              streamId,
              expected: expected.any,
              events: [newEvent()],
            })),
          ),
        ),
      ),
    )
    expect(rounds).toHaveLength(30)
    expect(await ok(store.streamVersion(a))).toBe(30)
    expect(await ok(store.streamVersion(b))).toBe(30)
  })
})

describe('global order', () => {
  it('hides a later-committed transaction behind an older open one, then orders by transaction', async () => {
    const cat = uniqueCategory()
    const client = await store.pool.connect()
    try {
      await client.query('BEGIN')
      const older = newEvent('Older')
      await client.query(`SELECT * FROM referrals.append_events($1, 'any', NULL, $2::json)`, [
        stream(cat, 'slow'),
        JSON.stringify([older]),
      ])
      // A younger transaction commits first; its position must not be readable yet, or a reader
      // resuming after it would skip the older one.
      await ok(
        store.append({
          streamId: stream(cat, 'fast'),
          expected: expected.any,
          events: [newEvent('Younger')],
        }),
      )
      expect(await ok(store.readAll({ streamPrefixes: [`${cat}-`] }))).toEqual([])
      expect(await ok(store.streamVersion(stream(cat, 'fast')))).toBe(1)
      await client.query('COMMIT')
    } finally {
      client.release()
    }
    const all = await ok(store.readAll({ streamPrefixes: [`${cat}-`] }))
    expect(all.map((e) => e.type)).toEqual(['Older', 'Younger'])
    expect((all[0] as StoredEvent).globalPosition < (all[1] as StoredEvent).globalPosition).toBe(true)
  })

  it('refuses (retryably) an append from a transaction older than the stream last writer', async () => {
    const s = stream(uniqueCategory(), 'order')
    const client = await store.pool.connect()
    try {
      await client.query('BEGIN')
      await client.query('SELECT pg_current_xact_id()')
      await ok(store.append({ streamId: s, expected: expected.any, events: [newEvent('Younger')] }))
      const error = await client
        .query(`SELECT * FROM referrals.append_events($1, 'any', NULL, $2::json)`, [
          s,
          JSON.stringify([newEvent()]),
        ])
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect((error as { code?: string }).code).toBe('40001')
      await client.query('ROLLBACK')
    } finally {
      client.release()
    }
    expect((await ok(store.readStream(s))).map((e) => e.type)).toEqual(['Younger'])
  })

  it('numbers the events of one multi-stream transaction consecutively', async () => {
    const cat = uniqueCategory()
    const results = await ok(
      store.appendMany([
        { streamId: stream(cat, 'b'), expected: expected.noStream, events: [newEvent('B1'), newEvent('B2')] },
        { streamId: stream(cat, 'a'), expected: expected.noStream, events: [newEvent('A1')] },
      ]),
    )
    const all = await ok(store.readAll({ streamPrefixes: [`${cat}-`] }))
    expect(all).toHaveLength(3)
    const positions = all.map((e) => e.globalPosition)
    expect(positions[1]).toBe((positions[0] as bigint) + 1n)
    expect(positions[2]).toBe((positions[1] as bigint) + 1n)
    expect(results.map((r) => r.version)).toEqual([2, 1])
  })
})

describe('adapter-specific append rules', () => {
  it('an event id stored in one stream and appended to another is an IdempotencyMismatch', async () => {
    const cat = uniqueCategory()
    const e = newEvent()
    await ok(store.append({ streamId: stream(cat, 'a'), expected: expected.any, events: [e] }))
    const err = await fail(store.append({ streamId: stream(cat, 'b'), expected: expected.any, events: [e] }))
    expect(err._tag).toBe('IdempotencyMismatch')
    expect(await ok(store.streamVersion(stream(cat, 'b')))).toBe(0)
  })

  it('appendMany (one statement) maps a refusal of any request to its error and writes nothing', async () => {
    const cat = uniqueCategory()
    const stored = newEvent('Stored')
    await ok(store.append({ streamId: stream(cat, 'z'), expected: expected.noStream, events: [stored] }))
    // The refused request sorts last, after a request that would succeed.
    const mismatch = await fail(
      store.appendMany([
        { streamId: stream(cat, 'a'), expected: expected.noStream, events: [newEvent()] },
        { streamId: stream(cat, 'y'), expected: expected.any, events: [stored] },
      ]),
    )
    expect(mismatch).toMatchObject({ _tag: 'IdempotencyMismatch', streamId: stream(cat, 'y') })
    const conflict = await fail(
      store.appendMany([
        { streamId: stream(cat, 'a'), expected: expected.noStream, events: [newEvent()] },
        { streamId: stream(cat, 'z'), expected: expected.exact(0), events: [newEvent()] },
      ]),
    )
    expect(conflict).toMatchObject({ _tag: 'WrongExpectedVersion', streamId: stream(cat, 'z'), actual: 1 })
    expect(await ok(store.streamVersion(stream(cat, 'a')))).toBe(0)
    // A request whose events are all stored already is a no-op next to one that writes.
    const results = await ok(
      store.appendMany([
        { streamId: stream(cat, 'z'), expected: expected.noStream, events: [stored] },
        { streamId: stream(cat, 'a'), expected: expected.noStream, events: [newEvent()] },
      ]),
    )
    expect(results.map((r) => r.version)).toEqual([1, 1])
    expect((await ok(store.readStream(stream(cat, 'z')))).map((e) => e.id)).toEqual([stored.id])
  })

  it('appendMany numbers streams after their versions, and an id shared by two requests is a mismatch of the later', async () => {
    const cat = uniqueCategory()
    await ok(
      store.append({
        streamId: stream(cat, 'b'),
        expected: expected.noStream,
        events: [newEvent(), newEvent()],
      }),
    )
    const results = await ok(
      store.appendMany([
        { streamId: stream(cat, 'c'), expected: expected.any, events: [newEvent('C1')] },
        { streamId: stream(cat, 'b'), expected: expected.exact(2), events: [newEvent('B3'), newEvent('B4')] },
        { streamId: stream(cat, 'a'), expected: expected.noStream, events: [newEvent('A1')] },
      ]),
    )
    expect(results.map((r) => [r.streamId, r.version])).toEqual([
      [stream(cat, 'c'), 1],
      [stream(cat, 'b'), 4],
      [stream(cat, 'a'), 1],
    ])
    const b = await ok(store.readStream(stream(cat, 'b')))
    expect(b.map((e) => [e.version, e.type])).toEqual([
      [1, 'Happened'],
      [2, 'Happened'],
      [3, 'B3'],
      [4, 'B4'],
    ])
    // Sorted by stream id: a, b, c — consecutive positions in that order; each result its last event's.
    const written = (await ok(store.readAll({ streamPrefixes: [`${cat}-`] }))).slice(2)
    expect(written.map((e) => e.type)).toEqual(['A1', 'B3', 'B4', 'C1'])
    for (let i = 1; i < written.length; i++)
      expect(written[i]?.globalPosition).toBe((written[i - 1]?.globalPosition as bigint) + 1n)
    expect(results[1]?.position).toBe(written[2]?.globalPosition)
    const shared = newEvent('Shared')
    const err = await fail(
      store.appendMany([
        { streamId: stream(cat, 'd'), expected: expected.noStream, events: [shared] },
        { streamId: stream(cat, 'e'), expected: expected.noStream, events: [newEvent(), shared] },
      ]),
    )
    expect(err).toMatchObject({ _tag: 'IdempotencyMismatch', streamId: stream(cat, 'e') })
    expect(await ok(store.streamVersion(stream(cat, 'd')))).toBe(0)
  })

  it('a companion write commits with its appendMany, not without it, and must read `appended`', async () => {
    const cat = uniqueCategory()
    await store.pool.query(`CREATE TABLE IF NOT EXISTS companion_test (id text PRIMARY KEY, n integer)`)
    const kind = store.capabilities.companionKinds?.[0] ?? ''
    const companion = (
      id: string,
      text = `INSERT INTO companion_test (id, n) SELECT v.id, v.n FROM unnest($1::text[], $2::integer[]) AS v(id, n) WHERE EXISTS (SELECT 1 FROM appended)`,
    ) => ({
      kind,
      text,
      row: [id, 1],
    })
    await ok(
      store.appendMany([{ streamId: stream(cat, 'a'), expected: expected.noStream, events: [newEvent()] }], {
        companions: [companion(`${cat}-1`), companion(`${cat}-2`)],
      }),
    )
    const conflict = await fail(
      store.appendMany([{ streamId: stream(cat, 'a'), expected: expected.noStream, events: [newEvent()] }], {
        companions: [companion(`${cat}-3`)],
      }),
    )
    expect(conflict._tag).toBe('WrongExpectedVersion')
    const unordered = await fail(
      store.appendMany([{ streamId: stream(cat, 'b'), expected: expected.noStream, events: [newEvent()] }], {
        companions: [
          companion(
            `${cat}-4`,
            'INSERT INTO companion_test (id, n) SELECT * FROM unnest($1::text[], $2::integer[])',
          ),
        ],
      }),
    )
    expect(unordered._tag).toBe('InvalidAppend')
    const other = await fail(
      store.appendMany([{ streamId: stream(cat, 'b'), expected: expected.noStream, events: [newEvent()] }], {
        companions: [{ ...companion(`${cat}-5`), kind: 'postgres:elsewhere' }],
      }),
    )
    expect(other._tag).toBe('InvalidAppend')
    const rows = await store.pool.query<{ id: string }>(
      `SELECT id FROM companion_test WHERE id LIKE $1 ORDER BY id`,
      [`${cat}-%`],
    )
    expect(rows.rows.map((r) => r.id)).toEqual([`${cat}-1`, `${cat}-2`])
    expect(await ok(store.streamVersion(stream(cat, 'b')))).toBe(0)
  })

  it('stores data and metadata as the exact JSON text it was given (each event read once from the array, migration 7)', async () => {
    const cat = uniqueCategory()
    const data = {
      z: 1,
      a: { y: [1, 2, { b: 'é "q" \\ \u2028' }], x: null },
      sealed: 'A'.repeat(3000),
    }
    const meta = { ...testMetadata, integrity: { prev: 'p', hash: 'h' } }
    const events = [
      { ...newEvent('First', data), metadata: meta },
      { ...newEvent('Second', { n: 2 }), schemaVersion: 3 },
    ]
    await ok(
      store.appendMany([
        { streamId: stream(cat, 'a'), expected: expected.noStream, events },
        { streamId: stream(cat, 'b'), expected: expected.noStream, events: [newEvent()] },
      ]),
    )
    const rows = await store.pool.query<{
      event_id: string
      type: string
      schema_version: number
      data: string
      metadata: string
    }>(
      `SELECT event_id, type, schema_version, data::text AS data, metadata::text AS metadata FROM referrals.events WHERE stream_id = $1 ORDER BY version`,
      [stream(cat, 'a')],
    )
    expect(rows.rows).toEqual(
      events.map((e) => ({
        event_id: e.id,
        type: e.type,
        schema_version: e.schemaVersion,
        data: JSON.stringify(e.data),
        metadata: JSON.stringify(e.metadata),
      })),
    )
  })

  it('appendMany takes at most one request per stream, like the in-memory store', async () => {
    const s = stream(uniqueCategory(), 'twice')
    const err = await fail(
      store.appendMany([
        { streamId: s, expected: expected.any, events: [newEvent()] },
        { streamId: s, expected: expected.any, events: [newEvent()] },
      ]),
    )
    expect(err._tag).toBe('InvalidAppend')
    expect(await ok(store.streamVersion(s))).toBe(0)
  })

  it('refuses data that is not JSON and strings PostgreSQL cannot store, writing nothing', async () => {
    const s = stream(uniqueCategory(), 'bad')
    expect(
      (await fail(store.append({ streamId: s, expected: expected.any, events: [newEvent('X', 1n)] })))._tag,
    ).toBe('InvalidAppend')
    const nul = await fail(
      store.append({ streamId: s, expected: expected.any, events: [{ ...newEvent(), type: 'a\u0000b' }] }),
    )
    expect(nul._tag).toBe('InvalidAppend')
    expect(nul.message).not.toContain('a\u0000b')
    expect(await ok(store.streamVersion(s))).toBe(0)
  })

  it('keeps data byte-for-byte: key order and number spelling survive the round trip', async () => {
    const s = stream(uniqueCategory(), 'bytes')
    const data = { z: 1, a: { y: [3, 2, 1], b: 'ü' }, m: 1.5 }
    await ok(store.append({ streamId: s, expected: expected.any, events: [newEvent('X', data)] }))
    const [stored] = await ok(store.readStream(s))
    expect(JSON.stringify(stored?.data)).toBe(JSON.stringify(data))
  })
})

describe('failures are typed and carry no secrets', () => {
  it('an unreachable server is StoreUnavailable/unavailable without the password', async () => {
    const attempt = createPostgresEventStore({
      connectionString: 'postgres://someone:s3cret-pw@127.0.0.1:1/nowhere',
      connectionTimeoutMs: 2000,
    })
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(PostgresStoreError)
    const storeError = (error as PostgresStoreError).error
    expect(storeError).toMatchObject({ _tag: 'StoreUnavailable', reason: 'unavailable' })
    expect(storeError.message).toContain('127.0.0.1:1')
    expect(storeError.message).not.toContain('s3cret-pw')
  })

  it('wrong credentials are access_denied', async () => {
    const url = new URL(db.url)
    url.password = 'not-the-password'
    const error = await createPostgresEventStore({ connectionString: url.toString() }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect((error as PostgresStoreError).error).toMatchObject({
      _tag: 'StoreUnavailable',
      reason: 'access_denied',
    })
    expect((error as PostgresStoreError).message).not.toContain('not-the-password')
  })

  it('a statement timeout maps to StoreUnavailable/timeout', async () => {
    const pool = new pg.Pool({ connectionString: db.url, statement_timeout: 50 })
    try {
      const error = await pool.query('SELECT pg_sleep(1)').then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(toStoreError(error, 'read')).toMatchObject({ _tag: 'StoreUnavailable', reason: 'timeout' })
    } finally {
      await pool.end()
    }
  })

  it('a closed store answers StoreUnavailable instead of throwing', async () => {
    const closing = await createPostgresEventStore({ connectionString: db.url })
    await closing.close()
    expect(await fail(closing.streamVersion(stream(uniqueCategory(), 'x')))).toMatchObject({
      _tag: 'StoreUnavailable',
    })
  })
})

describe('checkpoints and subscriptions', () => {
  it('saves checkpoints with compare-and-swap', async () => {
    const checkpoints = createPostgresCheckpointStore({ pool: store.pool })
    const id = `cas-${uniqueCategory()}`
    expect(await checkpoints.load(id)).toBeNull()
    expect(await checkpoints.save(id, null, 5n)).toBe(true)
    expect(await checkpoints.save(id, null, 6n)).toBe(false)
    expect(await checkpoints.save(id, 4n, 6n)).toBe(false)
    expect(await checkpoints.save(id, 5n, 9n)).toBe(true)
    expect(await checkpoints.load(id)).toBe(9n)
  })

  it('runs one worker per subscription id across stores; the standby resumes with no gap', async () => {
    const other = await createPostgresEventStore({ connectionString: db.url, pollIntervalMs: 20 })
    const cat = uniqueCategory()
    const subscriptionId = `single-${cat}`
    const seenA: string[] = []
    const seenB: string[] = []
    const append = (n: number) =>
      ok(store.append({ streamId: stream(cat, n % 3), expected: expected.any, events: [newEvent(`E${n}`)] }))
    try {
      for (let n = 0; n < 5; n++) await append(n)
      const a = store.subscribe({
        subscriptionId,
        streamPrefixes: [`${cat}-`],
        handler: async (e) => void seenA.push(e.type),
      })
      await a.caughtUp()
      const b = other.subscribe({
        subscriptionId,
        streamPrefixes: [`${cat}-`],
        handler: async (e) => void seenB.push(e.type),
      })
      for (let n = 5; n < 10; n++) await append(n)
      await a.caughtUp()
      expect(seenB).toEqual([])
      await a.stop()
      for (let n = 10; n < 15; n++) await append(n)
      await b.caughtUp()
      await b.stop()
      const all = Array.from({ length: 15 }, (_, n) => `E${n}`)
      expect([...seenA, ...seenB]).toEqual(all)
      expect(seenB.length).toBeGreaterThanOrEqual(5)
    } finally {
      await other.close()
    }
  })

  it('with notify, a subscription in another process wakes on commit instead of waiting for its poll', async () => {
    const writer = await createPostgresEventStore({ connectionString: db.url, notify: true })
    const reader = await createPostgresEventStore({
      connectionString: db.url,
      notify: true,
      pollIntervalMs: 120_000,
    })
    const cat = uniqueCategory()
    let delivered: (type: string) => void = () => undefined
    const first = new Promise<string>((resolve) => {
      delivered = resolve
    })
    const subscription = reader.subscribe({
      subscriptionId: `notify-${cat}`,
      streamPrefixes: [`${cat}-`],
      handler: async (e) => delivered(e.type),
    })
    try {
      // Let the subscription take its lock, LISTEN and go idle on its (two-minute) poll.
      await new Promise((r) => setTimeout(r, 300))
      await ok(
        writer.append({ streamId: stream(cat, 1), expected: expected.any, events: [newEvent('Notified')] }),
      )
      const outcome = await Promise.race([
        first,
        new Promise((r) => setTimeout(() => r('not woken'), 20_000)),
      ])
      expect(outcome).toBe('Notified')
    } finally {
      await subscription.stop()
      await reader.close()
      await writer.close()
    }
  })

  it('stops through onError, without crashing, when its lock connection is terminated', async () => {
    const cat = uniqueCategory()
    const subscriptionId = `terminated-${cat}`
    const errors: unknown[] = []
    const subscription = store.subscribe({
      subscriptionId,
      streamPrefixes: [`${cat}-`],
      handler: async () => undefined,
      onError: (e) => errors.push(e),
    })
    await subscription.caughtUp()
    const holder = await store.pool.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted
         AND objid::bigint = (hashtext($1)::bigint & 4294967295)`,
      [subscriptionId],
    )
    expect(holder.rows).toHaveLength(1)
    await store.pool.query('SELECT pg_terminate_backend($1)', [holder.rows[0]?.pid])
    await ok(store.append({ streamId: stream(cat, 1), expected: expected.any, events: [newEvent()] }))
    for (let i = 0; i < 200 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    await subscription.stop()
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(PostgresStoreError)
  })
})

describe('one-statement append of a new stream', () => {
  it('is one round trip when it succeeds, two when the id or the stream is taken, with the same results', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 })
    const counted = await createPostgresEventStore({ pool, migrate: false })
    const statements: string[] = []
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>
    ;(pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
      const first = args[0] as string | { text: string }
      statements.push(typeof first === 'string' ? first : first.text)
      return query(...args)
    }
    try {
      const cat = uniqueCategory()
      const event = newEvent('Created')
      const created = await ok(
        counted.append({ streamId: stream(cat, 'a'), expected: expected.noStream, events: [event] }),
      )
      expect(statements).toHaveLength(1)
      expect(statements[0]).toMatch(/^INSERT INTO/)
      expect(created.version).toBe(1)
      // The retry of the same request: refused by the event_id index, then found idempotent.
      statements.length = 0
      const again = await ok(
        counted.append({ streamId: stream(cat, 'a'), expected: expected.noStream, events: [event] }),
      )
      expect(statements).toHaveLength(2)
      expect(again).toEqual(created)
      // The same id in another stream: a mismatch; a new id on the taken stream: a conflict.
      const mismatch = await counted.append({
        streamId: stream(cat, 'b'),
        expected: expected.noStream,
        events: [event],
      })()
      expect(E.isLeft(mismatch) && mismatch.left._tag).toBe('IdempotencyMismatch')
      const conflict = await counted.append({
        streamId: stream(cat, 'a'),
        expected: expected.noStream,
        events: [newEvent()],
      })()
      expect(E.isLeft(conflict) && conflict.left).toMatchObject({ _tag: 'WrongExpectedVersion', actual: 1 })
      expect((await ok(counted.readStream(stream(cat, 'a')))).map((e) => e.id)).toEqual([event.id])
      expect(await ok(counted.readStream(stream(cat, 'b')))).toEqual([])
    } finally {
      await counted.close()
      await pool.end()
    }
  })
})
