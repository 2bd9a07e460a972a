import {
  type EventId,
  type EventMetadata,
  expected,
  hashChainedStore,
  type Instant,
  type StreamId,
  unsafeId,
  verifyEventStore,
} from '@referrals/core'
import { createPostgresEventStore, type PostgresEventStore } from '@referrals/postgres'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import * as E from 'fp-ts/lib/Either.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Hasher } from './hasher.js'
import { MasterKey } from './master-key.js'
import { createInMemoryPatientKeyStore } from './memory-key-store.js'
import { createAesGcmPhiCipher } from './phi-cipher.js'

// The chain is computed over data as the store will hold it and re-checked over data as the
// store returns it: this runs both through PostgreSQL's JSONB (key order, number forms) for real.
let db: TestDatabase
let inner: PostgresEventStore
beforeAll(async () => {
  db = await createTestDatabase()
  inner = await createPostgresEventStore({ connectionString: db.url })
})
afterAll(async () => {
  await inner?.close()
  await db.drop()
})

const metadata: EventMetadata = {
  actor: { kind: 'user', userId: unsafeId('u-1'), platformRoles: [], memberships: [] },
  correlationId: unsafeId('corr-1'),
  commandId: unsafeId('cmd-1'),
  occurredAt: unsafeId<Instant>('2026-01-02T03:04:05.678Z'),
}

describe('hash chain over PostgreSQL with sealed PHI', () => {
  it('verifies what was appended concurrently, and finds a row altered behind its back', async () => {
    const store = hashChainedStore(inner, sha256Hasher)
    const cipher = createAesGcmPhiCipher({
      keys: createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() }),
    })
    const streams = ['referral-a', 'referral-b', 'referral-c'].map((s) => unsafeId<StreamId>(s))
    await Promise.all(
      Array.from({ length: 6 }, (_, w) =>
        (async () => {
          for (let i = 0; i < 10; i++) {
            const streamId = streams[(w + i) % streams.length] as StreamId
            const id = unsafeId<EventId>(`ev-${w}-${i}`)
            const phi = await cipher.seal({ streamId, eventId: id }, unsafeId('pat-1'), {
              name: 'Jane Canary',
            })
            const data = { z: 1.5, a: [1, 2, { y: null, b: 'é' }], n: 10 ** 20, phi }
            const r = await store.append({
              streamId,
              expected: expected.any,
              events: [{ id, type: 'Happened', schemaVersion: 1, data, metadata }],
            })()
            if (E.isLeft(r)) throw new Error(r.left.message)
          }
        })(),
      ),
    )
    const report = await verifyEventStore(store, sha256Hasher, { pageSize: 16 })()
    expect(E.isRight(report) && report.right.ok && report.right.eventsChecked).toBe(60)
    if (!E.isRight(report) || !report.right.ok) return

    const target = await inner.pool.query(
      `SELECT version FROM ${inner.schema}.events WHERE stream_id = 'referral-b' AND version = 4`,
    )
    expect(target.rowCount).toBe(1)
    await inner.pool.query(
      `UPDATE ${inner.schema}.events SET data = jsonb_set(data::jsonb, '{n}', '1')::json WHERE stream_id = 'referral-b' AND version = 4`,
    )
    const tampered = await verifyEventStore(store, sha256Hasher, { checkpoint: report.right.heads })()
    expect(E.isRight(tampered) && !tampered.right.ok && tampered.right.problem).toMatchObject({
      kind: 'altered',
      streamId: 'referral-b',
      version: 4,
    })
  })
})
