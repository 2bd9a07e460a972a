import {
  createDeadlineScheduler,
  createEngine,
  type EventStore,
  HOUR_MS,
  sequentialUuids,
} from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import { createPostgresEventStore } from '@referrals/postgres'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import * as E from 'fp-ts/lib/Either.js'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deliverDue, inMemoryOutbox } from './outbox.js'
import { createPostgresOutbox } from './postgres.js'
import { inMemoryPreferences } from './preferences.js'
import { createOutboxProjector } from './projector.js'

let db: TestDatabase
const stores: EventStore[] = []
const openStore = async (schema = 'events_deadlines') => {
  const store = await createPostgresEventStore({ connectionString: db.url, poolSize: 8, schema })
  stores.push(store)
  return store
}

beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(async () => {
  for (const s of stores) await s.close()
  await db.drop()
})

const count = async (store: EventStore, type: string) => {
  const all = await store.readAll({ streamPrefixes: ['referral-'] })()
  if (E.isLeft(all)) throw new Error(all.left.message)
  const byStream = new Map<string, number>()
  for (const e of all.right)
    if (e.type === type) byStream.set(e.streamId, (byStream.get(e.streamId) ?? 0) + 1)
  return byStream
}

describe('deadlines and outbox over PostgreSQL, from several processes', () => {
  it('fires each deadline exactly once with two schedulers on separate connections and a restart', async () => {
    const storeA = await openStore()
    const w = await createWorld({ store: storeA })
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 1)
    const ids = Array.from({ length: 8 }, (_, i) => `pg-${i}`)
    for (const id of ids) await w.send(id)

    const engineFor = async (namespace: number) =>
      createEngine({ store: await openStore(), clock: w.clock, ids: sequentialUuids(namespace) })
    const one = createDeadlineScheduler(await engineFor(101), { clock: w.clock })
    const two = createDeadlineScheduler(await engineFor(102), { clock: w.clock })
    const both = async (x: typeof one, y: typeof one) => {
      const results = await Promise.all([x.tick(), y.tick()])
      for (const r of results) expect(r.failures).toEqual([])
      return results.reduce((n, r) => n + r.issued, 0)
    }

    w.clock.advance(24 * HOUR_MS)
    expect(await both(one, two)).toBe(ids.length)
    expect(await both(one, two)).toBe(0)
    // Restart: a new process (new connections, empty read models) joins halfway.
    const restarted = createDeadlineScheduler(await engineFor(103), { clock: w.clock })
    w.clock.advance(24 * HOUR_MS)
    expect(await both(restarted, two)).toBe(ids.length)
    expect(await both(restarted, one)).toBe(0)

    const reminders = await count(storeA, 'ResponseReminderIssued')
    const expiries = await count(storeA, 'ReferralExpired')
    const deliveries = await count(storeA, 'ReferralDelivered')
    expect(reminders.size).toBe(ids.length)
    expect(expiries.size).toBe(ids.length)
    expect([...reminders.values(), ...expiries.values()].every((n) => n === 1)).toBe(true)
    expect([...deliveries.values()].every((n) => n === 2)).toBe(true)
  })

  it('projects committed events into the PostgreSQL outbox once, even when projected twice', async () => {
    const store = await openStore('events_projector')
    const w = await createWorld({ store })
    const a = await w.addSpecialist('spec-a', 1)
    const pool = new pg.Pool({ connectionString: db.url, max: 4 })
    try {
      const outbox = await createPostgresOutbox({ pool, schema: 'notify_projector' })
      const preferences = inMemoryPreferences()
      await preferences.put(
        { kind: 'practice', practiceId: a },
        { channels: { email: 'office@spec-a.test' } },
      )
      await w.send('pgo-1', { kind: 'direct', practiceId: a })
      const projector = createOutboxProjector({
        store,
        engine: w.engine,
        outbox,
        preferences,
        clock: w.clock,
      })
      const all = await store.readAll({ streamPrefixes: ['referral-'] })()
      if (E.isLeft(all)) throw new Error(all.left.message)
      await Promise.all([...all.right, ...all.right].map((e) => projector.handle(e)))
      const queued = await outbox.list()
      expect(queued.map((e) => `${e.notification.kind} ${JSON.stringify(e.address)}`)).toEqual([
        'recipient.new_referral {"email":"office@spec-a.test"}',
      ])
      const sent: string[] = []
      const result = await deliverDue({
        outbox,
        channels: new Map([
          [
            'email',
            {
              name: 'email',
              deliver: async (n: { readonly id: string }) => {
                sent.push(n.id)
                return { ok: true } as const
              },
            },
          ],
        ]),
        nowMs: Date.parse(w.clock.now()),
      })
      expect(result.delivered).toBe(1)
      expect(sent).toHaveLength(1)
      // The in-memory outbox behaves the same for the same input.
      const memory = inMemoryOutbox()
      const again = createOutboxProjector({
        store,
        engine: w.engine,
        outbox: memory,
        preferences,
        clock: w.clock,
      })
      for (const e of [...all.right, ...all.right]) await again.handle(e)
      expect((await memory.list()).map((e) => e.notification.id)).toEqual(
        queued.map((e) => e.notification.id),
      )
    } finally {
      await pool.end()
    }
  })
})
