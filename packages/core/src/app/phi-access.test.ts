import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { sequentialUuids } from '../shared/id-generator.js'
import { type CorrelationId, type UserId, unsafeId } from '../shared/ids.js'
import { type Instant, manualClock } from '../shared/time.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import type { EventStore } from '../store/port.js'
import { countingStore } from '../testing/counting-store.js'
import { auditStreamId, createPhiAccessRecorder, type PhiAccess } from './phi-access.js'

const access = (i: number): PhiAccess => ({
  userId: unsafeId<UserId>(`u-${i}`),
  role: 'specialist',
  practiceId: null,
  referralId: null,
  patientId: null,
  purpose: 'treatment',
  outcome: 'granted',
  channel: 'api',
  resource: `/referrals/r-${i}`,
  correlationId: unsafeId<CorrelationId>(`c-${i}`),
})

describe('PHI access records, group-committed (issue 11)', () => {
  it('concurrent reads share appends, every record is stored once, and each caller is answered after its append', async () => {
    const clock = manualClock('2026-12-07T10:00:00.000Z' as Instant)
    const counted = countingStore(createInMemoryEventStore({ clock }))
    const stored = new Set<string>()
    const store: EventStore = {
      ...counted.store,
      append: (request) => async () => {
        const r = await counted.store.append(request)()
        for (const e of request.events) stored.add(String((e.data as { resource: string }).resource))
        return r
      },
    }
    const record = createPhiAccessRecorder({ store, ids: sequentialUuids(), clock })
    const n = 100
    const answered = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const r = await record(access(i))
        // Answered only once its own record is in the store.
        return E.isRight(r) && stored.has(`/referrals/r-${i}`)
      }),
    )
    expect(answered.every(Boolean)).toBe(true)
    expect(counted.calls.append).toBeLessThan(n / 4)
    const all = await counted.store.readStream(auditStreamId(clock.now()))()
    expect(E.isRight(all) && all.right.length).toBe(n)
    expect(E.isRight(all) && new Set(all.right.map((e) => e.metadata.correlationId)).size).toBe(n)
  })

  it('a failed append fails every read in its batch (nothing is shown that is not logged), and the next batch still goes through', async () => {
    const clock = manualClock('2026-12-07T10:00:00.000Z' as Instant)
    const inner = createInMemoryEventStore({ clock })
    let fail = true
    const store: EventStore = {
      ...inner,
      append: (request) => async () => {
        if (fail) {
          fail = false
          return E.left({ _tag: 'StoreUnavailable', reason: 'unavailable', message: 'down' })
        }
        return inner.append(request)()
      },
    }
    const record = createPhiAccessRecorder({ store, ids: sequentialUuids(), clock })
    const first = await record(access(0))
    expect(E.isLeft(first)).toBe(true)
    const second = await record(access(1))
    expect(E.isRight(second)).toBe(true)
    const all = await inner.readStream(auditStreamId(clock.now()))()
    expect(E.isRight(all) && all.right.map((e) => e.metadata.correlationId)).toEqual(['c-1'])
  })
})
