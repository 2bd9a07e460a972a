import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { sequentialUuids } from '../shared/id-generator.js'
import { type ReferralId, type StreamId, unsafeId } from '../shared/ids.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import type { EventStore } from '../store/port.js'
import { createWorld } from '../testing/world.js'
import { createEngine } from './engine.js'

const rid = (s: string) => unsafeId<ReferralId>(s)

describe('routing process manager (engine + pool decider + referral decider)', () => {
  it('splits pooled referrals 2:1 between FTE 1.0 and 0.5, and records the decision on the pool', async () => {
    const w = await createWorld()
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 0.5)
    const holders: string[] = []
    for (let i = 0; i < 30; i++) {
      await w.send(`r-${i}`)
      holders.push(String(await w.holderOf(`r-${i}`)))
    }
    expect(holders.filter((h) => h === 'spec-a')).toHaveLength(20)
    expect(holders.filter((h) => h === 'spec-b')).toHaveLength(10)
    const explained = await w.routing.explain(rid('r-0'))
    expect(E.isRight(explained) && explained.right?.decisions).toHaveLength(1)
    const verified = await w.routing.verifyPoolOf(rid('r-0'))
    expect(E.isRight(verified) && verified.right?.ok).toBe(true)
  })

  it('re-routes a declined referral to another specialist and never back to the decliner', async () => {
    const w = await createWorld()
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 1)
    await w.send('r-1')
    const first = await w.holderOf('r-1')
    expect(first).not.toBeNull()
    await w.must(
      w.engine.referrals.execute(
        rid('r-1'),
        { type: 'DeclineReferral', data: { reasonCode: 'capacity' } },
        await w.as(w.ownerOf(String(first))),
      ),
    )
    const second = await w.holderOf('r-1')
    expect(second).not.toBeNull()
    expect(second).not.toBe(first)
    expect(await w.statusOf('r-1')).toBe('pending')
    // The second declines too: everyone in the pool has declined, so the sender gets it back.
    await w.must(
      w.engine.referrals.execute(
        rid('r-1'),
        { type: 'DeclineReferral', data: { reasonCode: 'out_of_scope' } },
        await w.as(w.ownerOf(String(second))),
      ),
    )
    expect(await w.statusOf('r-1')).toBe('returned')
  })

  it('keeps a referral unassigned while the pool is empty and routes it when a specialist is verified', async () => {
    const w = await createWorld()
    await w.send('r-1')
    expect(await w.statusOf('r-1')).toBe('unassigned')
    const spec = await w.addSpecialist('spec-late', 1, { verified: false })
    expect(await w.statusOf('r-1')).toBe('unassigned')
    await w.must(w.engine.practices.execute(spec, { type: 'VerifyPractice', data: {} }, w.adminCtx))
    expect(await w.statusOf('r-1')).toBe('pending')
    expect(await w.holderOf('r-1')).toBe('spec-late')
  })

  it('routes only to specialists accepting the referral insurance network', async () => {
    const w = await createWorld()
    await w.addSpecialist('spec-a', 1, { insuranceNetworks: ['blue'] })
    await w.addSpecialist('spec-b', 1, { insuranceNetworks: ['green'] })
    for (const n of [1, 2, 3]) {
      await w.send(`r-${n}`, { kind: 'pooled' }, { insuranceNetworkId: 'green' })
      expect(await w.holderOf(`r-${n}`)).toBe('spec-b')
    }
  })

  it('routes concurrent sends in one pool without losing a decision (pool stream serializes them)', async () => {
    const w = await createWorld()
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 1)
    await Promise.all(Array.from({ length: 12 }, (_, i) => w.send(`c-${i}`)))
    const holders = await Promise.all(Array.from({ length: 12 }, (_, i) => w.holderOf(`c-${i}`)))
    expect(holders.filter((h) => h === 'spec-a')).toHaveLength(6)
    expect(holders.filter((h) => h === 'spec-b')).toHaveLength(6)
  })

  it('re-files a referral whose category changed: released from the old pool, re-routed in the new one after a decline', async () => {
    const w = await createWorld()
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 1)
    await w.send('r-1')
    const holder = String(await w.holderOf('r-1'))
    await w.must(
      w.engine.referrals.execute(
        rid('r-1'),
        { type: 'ChangeCategory', data: { category: { categoryId: w.ids.hip } } },
        await w.as(w.ownerOf(holder)),
      ),
    )
    const poolEvents = async (key: string) => {
      const read = await w.store.readStream(unsafeId<StreamId>(`pool-north:ortho:${key}:*`))()
      return E.isRight(read) ? read.right.map((e) => e.type) : []
    }
    expect(await poolEvents('knee')).toContain('ReferralReleased')
    expect(await poolEvents('hip')).toContain('DirectReferralRecorded')
    await w.must(
      w.engine.referrals.execute(
        rid('r-1'),
        { type: 'DeclineReferral', data: { reasonCode: 'out_of_scope' } },
        await w.as(w.ownerOf(holder)),
      ),
    )
    const next = await w.holderOf('r-1')
    expect(next).not.toBeNull()
    expect(next).not.toBe(holder)
    expect(await poolEvents('hip')).toEqual(expect.arrayContaining(['ReferralReleased', 'ReferralRouted']))
  })

  it('keeps pool decisions exact when two engines (processes) share the store and each caches pools', async () => {
    const w = await createWorld()
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 0.5)
    const other = createEngine({ store: w.store, clock: w.clock, ids: sequentialUuids(7) })
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    const engines = [w.engine, other]
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        w.must(
          (engines[i % 2] as typeof other).referrals.execute(
            rid(`m-${i}`),
            { type: 'SendReferral', data: w.sendData(`m-${i}`) },
            ctx,
          ),
        ),
      ),
    )
    const holders = await Promise.all(Array.from({ length: 30 }, (_, i) => w.holderOf(`m-${i}`)))
    expect(holders.filter((h) => h === 'spec-a')).toHaveLength(20)
    expect(holders.filter((h) => h === 'spec-b')).toHaveLength(10)
    const verified = await w.routing.verifyPoolOf(rid('m-0'))
    expect(E.isRight(verified) && verified.right?.ok).toBe(true)
  })

  it('keeps a committed send when routing fails afterwards, and repairAll routes it later', async () => {
    const inner = createInMemoryEventStore()
    let failPoolReads = true
    const flaky: EventStore = {
      ...inner,
      readStream: (streamId, options) =>
        failPoolReads && streamId.startsWith('pool-')
          ? // A broken connection surfaces as a rejected promise, not a typed error.
            () => Promise.reject(new Error('connection reset'))
          : inner.readStream(streamId, options),
    }
    const w = await createWorld({ store: flaky })
    await w.addSpecialist('spec-a', 1)
    const sent = await w.engine.referrals.execute(
      rid('r-1'),
      { type: 'SendReferral', data: w.sendData('r-1') },
      await w.as(w.ownerOf(w.ids.clinic)),
    )()
    expect(E.isRight(sent)).toBe(true)
    expect(await w.statusOf('r-1')).toBe('unassigned')
    failPoolReads = false
    await w.routing.repairAll(w.adminCtx)
    expect(await w.statusOf('r-1')).toBe('pending')
    expect(await w.holderOf('r-1')).toBe('spec-a')
  })

  it('on a store without multi-stream appends, releases a pool decision whose referral was cancelled before delivery', async () => {
    const inner = createInMemoryEventStore()
    let crashAfterPoolAppend = true
    const nonAtomic: EventStore = {
      ...inner,
      capabilities: { atomicMultiStreamAppend: false },
      // The process "dies" between the pool append and the referral append, once.
      append: (request) => async () => {
        if (
          crashAfterPoolAppend &&
          request.streamId.startsWith('referral-') &&
          request.events.some((e) => e.type === 'ReferralDelivered')
        ) {
          crashAfterPoolAppend = false
          throw new Error('killed between the two appends')
        }
        return inner.append(request)()
      },
    }
    const w = await createWorld({ store: nonAtomic })
    await w.addSpecialist('spec-a', 1)
    const sent = await w.engine.referrals.execute(
      rid('r-1'),
      { type: 'SendReferral', data: w.sendData('r-1') },
      await w.as(w.ownerOf(w.ids.clinic)),
    )()
    expect(E.isRight(sent)).toBe(true)
    expect(await w.statusOf('r-1')).toBe('unassigned')
    await w.must(
      w.engine.referrals.execute(
        rid('r-1'),
        { type: 'CancelReferral', data: { reasonCode: 'no_longer_needed' } },
        await w.as(w.ownerOf(w.ids.clinic)),
      ),
    )
    const pool = await w.store.readStream(unsafeId<StreamId>('pool-north:ortho:knee:*'))()
    const types = E.isRight(pool) ? pool.right.map((e) => e.type) : []
    expect(types).toContain('ReferralRouted')
    expect(types.at(-1)).toBe('ReferralReleased')
  })
})
