import type { GlobalPosition, StoredEvent } from '@referrals/core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPostgresEventStore, type PostgresEventStore } from './event-store.js'
import { newEvent, ok, uniqueCategory } from './testing/fixtures.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

let db: TestDatabase
let store: PostgresEventStore
beforeAll(async () => {
  db = await createTestDatabase()
  store = await createPostgresEventStore({ connectionString: db.url, poolSize: 30, pollIntervalMs: 5 })
})
afterAll(async () => {
  await store?.close()
  await db?.drop()
})

/**
 * Writers hold their transactions open for random times (pg_sleep before and after the append),
 * so positions are taken in one order and committed in another, while a subscription and a raw
 * `readAll` cursor read concurrently. Neither may skip or repeat an event.
 */
it('20 writers with random in-transaction delays across 1,000 streams: readers see every event once, in stream order', async () => {
  const cat = uniqueCategory()
  const streams = 1000
  const writers = 20
  const transactionsPerWriter = 40
  const seenBySubscription: StoredEvent[] = []
  const subscription = store.subscribe({
    subscriptionId: `gap-${cat}`,
    streamPrefixes: [`${cat}-`],
    batchSize: 7,
    handler: async (e) => void seenBySubscription.push(e),
  })

  const seenByCursor: StoredEvent[] = []
  let writing = true
  const cursorReader = (async () => {
    let after: GlobalPosition = 0n
    while (writing || seenByCursor.length === 0) {
      const page = await ok(store.readAll({ after, maxCount: 5, streamPrefixes: [`${cat}-`] }))
      seenByCursor.push(...page)
      after = page.at(-1)?.globalPosition ?? after
      if (page.length === 0) await new Promise((r) => setTimeout(r, 2))
    }
    for (;;) {
      const page = await ok(store.readAll({ after, maxCount: 100, streamPrefixes: [`${cat}-`] }))
      if (page.length === 0) return
      seenByCursor.push(...page)
      after = page.at(-1)?.globalPosition ?? after
    }
  })()

  const writer = async (w: number) => {
    const client = await store.pool.connect()
    try {
      for (let t = 0; t < transactionsPerWriter; t++) {
        // Every fourth transaction goes to one of five hot streams, so writers contend on streams too.
        const streamId = `${cat}-${t % 4 === 0 ? (t / 4) % 5 : (w * 7919 + t * 104729) % streams}`
        const events = Array.from({ length: 1 + ((w + t) % 3) }, () => newEvent('Written', { w, t }))
        await client.query('BEGIN')
        await client.query('SELECT pg_sleep($1)', [Math.random() * 0.015])
        const r = await client.query<{ status: string }>(
          `SELECT status FROM referrals.append_events($1, 'any', NULL, $2::json)`,
          [streamId, JSON.stringify(events)],
        )
        if (r.rows[0]?.status !== 'ok') throw new Error(`append failed: ${r.rows[0]?.status}`)
        await client.query('SELECT pg_sleep($1)', [Math.random() * 0.015])
        await client.query('COMMIT')
      }
    } finally {
      client.release()
    }
  }
  await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)))
  writing = false
  await cursorReader
  await subscription.caughtUp()
  await subscription.stop()

  const stored = await store.pool.query<{ event_id: string; stream_id: string; version: number }>(
    'SELECT event_id, stream_id, version FROM referrals.events WHERE stream_id LIKE $1',
    [`${cat}-%`],
  )
  const expectedIds = stored.rows.map((r) => r.event_id).sort()
  const expectedCount = Array.from({ length: writers }, (_, w) =>
    Array.from({ length: transactionsPerWriter }, (_, t) => 1 + ((w + t) % 3)).reduce((a, b) => a + b, 0),
  ).reduce((a, b) => a + b, 0)
  expect(expectedIds).toHaveLength(expectedCount)

  for (const seen of [seenBySubscription, seenByCursor]) {
    expect(seen.map((e) => e.id).sort()).toEqual(expectedIds)
    for (let i = 1; i < seen.length; i++) {
      expect((seen[i] as StoredEvent).globalPosition > (seen[i - 1] as StoredEvent).globalPosition).toBe(true)
    }
    const lastVersion = new Map<string, number>()
    for (const e of seen) {
      expect(e.version).toBe((lastVersion.get(e.streamId) ?? 0) + 1)
      lastVersion.set(e.streamId, e.version)
    }
  }
})
