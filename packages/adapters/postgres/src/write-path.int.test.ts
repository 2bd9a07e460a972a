import type { EventStore, ReferralId } from '@referrals/core'
import { unsafeId } from '@referrals/core'
import { countingStore, createWorld } from '@referrals/core/testing'
import * as E from 'fp-ts/lib/Either.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresEventStore } from './event-store.js'
import { createTestDatabase, type TestDatabase } from './testing/index.js'

let db: TestDatabase
let store: EventStore
beforeAll(async () => {
  db = await createTestDatabase()
  store = await createPostgresEventStore({ connectionString: db.url, schema: 'events_write_path' })
})
afterAll(async () => {
  await store.close()
  await db.drop()
})

describe('the write path of a choose-for-me send on PostgreSQL (issue 11)', () => {
  it('commits once (one appendMany: the send, its routing events and the pool decision) and reads each stream at most once', async () => {
    const counted = countingStore(store)
    const w = await createWorld({ store: counted.store })
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 0.5)
    await w.send('warm-up')
    counted.reset()
    const sent = await w.engine.referrals.execute(
      unsafeId<ReferralId>('pg-1'),
      { type: 'SendReferral', data: w.sendData('pg-1') },
      await w.as(w.ownerOf(w.ids.clinic)),
    )()
    if (E.isLeft(sent)) throw new Error(sent.left.message)
    expect(counted.calls.appendMany).toBe(1)
    expect(counted.calls.append).toBe(0)
    for (const [streamId, reads] of counted.calls.reads) expect([streamId, reads]).toEqual([streamId, 1])
    expect(sent.right.state.exists && sent.right.state.status).toBe('pending')
    const stored = await store.readStream(unsafeId('referral-pg-1'))()
    expect(E.isRight(stored) && stored.right.map((e) => e.type)).toEqual(
      sent.right.produced.map((e) => e.type),
    )
  })
})
