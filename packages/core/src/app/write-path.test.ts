import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { ReferralState } from '../referral/index.js'
import { sequentialUuids } from '../shared/id-generator.js'
import type { ReferralId } from '../shared/ids.js'
import { unsafeId } from '../shared/ids.js'
import { createInMemoryEventStore, IN_MEMORY_COMPANION } from '../store/in-memory.js'
import { countingStore } from '../testing/counting-store.js'
import { createWorld } from '../testing/world.js'
import type { CommandOutcome } from './command-handler.js'
import { createEngine } from './engine.js'

describe('the write path of a choose-for-me command (issue 11)', () => {
  it('a send is one appendMany (command + routing + pool decision), does not read its new referral stream and answers the routed state', async () => {
    const { store, calls, reset } = countingStore(createInMemoryEventStore())
    const w = await createWorld({ store })
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 1)
    await w.send('warm-up') // the first send reads the pool and the directory whole; later ones only what is new
    reset()
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    const sent = await w.engine.referrals.execute(
      unsafeId<ReferralId>('r-1'),
      { type: 'SendReferral', data: w.sendData('r-1') },
      ctx,
    )()
    if (E.isLeft(sent)) throw new Error(sent.left.message)
    expect(calls.appendMany).toBe(1)
    expect(calls.append).toBe(0)
    expect(calls.reads.get('referral-r-1')).toBeUndefined() // decided on the empty stream
    for (const [streamId, reads] of calls.reads) expect([streamId, reads]).toEqual([streamId, 1])
    // The result is the final state: routed and delivered, at the version the store holds.
    expect(sent.right.state.exists && sent.right.state.status).toBe('pending')
    const stored = await store.readStream(unsafeId('referral-r-1'))()
    expect(E.isRight(stored) && stored.right.length).toBe(sent.right.version)
    expect(sent.right.produced.map((e) => e.type)).toEqual(
      E.isRight(stored) ? stored.right.map((e) => e.type) : [],
    )
    expect(sent.right.state.exists && sent.right.state.recipientPracticeId).toBe(await w.holderOf('r-1'))
  })

  it('a repeated send of an existing referral id is refused as before and writes nothing (the empty-stream guess is checked by the append)', async () => {
    const { store, calls, reset } = countingStore(createInMemoryEventStore())
    const w = await createWorld({ store })
    await w.addSpecialist('spec-a', 1)
    await w.send('r-1')
    const before = await store.readStream(unsafeId('referral-r-1'))()
    const pool = await store.readAll()()
    reset()
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    const again = await w.engine.referrals.execute(
      unsafeId<ReferralId>('r-1'),
      { type: 'SendReferral', data: w.sendData('r-1') },
      ctx,
    )()
    expect(E.isLeft(again) && again.left._tag === 'DomainError' && again.left.code).toBe(
      'referral.already_exists',
    )
    expect(calls.reads.get('referral-r-1')).toBe(1) // read once, after the refused append
    const after = await store.readStream(unsafeId('referral-r-1'))()
    expect(E.isRight(after) && after.right.length).toBe(E.isRight(before) && before.right.length)
    const poolAfter = await store.readAll()()
    expect(E.isRight(poolAfter) && poolAfter.right.length).toBe(E.isRight(pool) && pool.right.length)
  })

  it('a decline re-routes in the same transaction: one appendMany, and the answer names the new holder', async () => {
    const { store, calls, reset } = countingStore(createInMemoryEventStore())
    const w = await createWorld({ store })
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 1)
    await w.send('r-1')
    const first = await w.holderOf('r-1')
    reset()
    const declined = await w.engine.referrals.execute(
      unsafeId<ReferralId>('r-1'),
      { type: 'DeclineReferral', data: { reasonCode: 'capacity' } },
      await w.as(w.ownerOf(String(first))),
    )()
    if (E.isLeft(declined)) throw new Error(declined.left.message)
    expect(calls.appendMany).toBe(1)
    expect(calls.append).toBe(0)
    const holder = declined.right.state.exists ? declined.right.state.recipientPracticeId : null
    expect(holder).not.toBeNull()
    expect(holder).not.toBe(first)
    expect(holder).toBe(await w.holderOf('r-1'))
  })

  it('group commit: concurrent sends to one pool share transactions, and every decision is the one-at-a-time decision (verifyRouting)', async () => {
    const { store, calls, reset } = countingStore(createInMemoryEventStore())
    const w = await createWorld({ store })
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 0.5)
    await w.send('warm-up')
    reset()
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    const n = 60
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        w.engine.referrals.execute(
          unsafeId<ReferralId>(`g-${i}`),
          { type: 'SendReferral', data: w.sendData(`g-${i}`) },
          ctx,
        )(),
      ),
    )
    const holders = results.map((r) => {
      if (E.isLeft(r)) throw new Error(r.left.message)
      return r.right.state.exists ? r.right.state.recipientPracticeId : null
    })
    expect(calls.append).toBe(0)
    expect(calls.appendMany).toBeGreaterThan(0)
    expect(calls.appendMany).toBeLessThan(n / 2) // batched: far fewer transactions than sends
    for (let i = 0; i < n; i++) expect(holders[i]).toBe(await w.holderOf(`g-${i}`))
    // 61 referrals at FTE 1 : 0.5 (warm-up included): 41 or 40 to spec-a.
    const toA =
      holders.filter((h) => h === 'spec-a').length + ((await w.holderOf('warm-up')) === 'spec-a' ? 1 : 0)
    expect(toA === 40 || toA === 41).toBe(true)
    const verified = await w.routing.verifyPoolOf(unsafeId<ReferralId>('g-0'))
    expect(E.isRight(verified) && verified.right?.ok).toBe(true)
  })

  it('on a store without multi-stream appends the command is written alone, routed right after, and the answer is still final', async () => {
    const { store, calls, reset } = countingStore(createInMemoryEventStore())
    const w = await createWorld({ store: { ...store, capabilities: { atomicMultiStreamAppend: false } } })
    await w.addSpecialist('spec-a', 1)
    reset()
    const sent = await w.engine.referrals.execute(
      unsafeId<ReferralId>('r-1'),
      { type: 'SendReferral', data: w.sendData('r-1') },
      await w.as(w.ownerOf(w.ids.clinic)),
    )()
    if (E.isLeft(sent)) throw new Error(sent.left.message)
    expect(calls.appendMany).toBe(0)
    expect(calls.append).toBeGreaterThanOrEqual(2) // the send, then pool and referral on their own
    expect(sent.right.state.exists && sent.right.state.recipientPracticeId).toBe('spec-a')
  })

  it('a companion write is committed with the send and its routing (one appendMany), built from the outcome the command returns', async () => {
    const { store, calls, reset } = countingStore(createInMemoryEventStore())
    const w = await createWorld({ store })
    await w.addSpecialist('spec-a', 1)
    await w.send('warm-up')
    reset()
    const seen: CommandOutcome<ReferralState>[] = []
    let applied = 0
    const sent = await w.engine.referrals.execute(
      unsafeId<ReferralId>('c-1'),
      { type: 'SendReferral', data: w.sendData('c-1') },
      await w.as(w.ownerOf(w.ids.clinic)),
      {
        companion: (outcome) => {
          seen.push(outcome)
          return { kind: IN_MEMORY_COMPANION, apply: () => applied++ }
        },
      },
    )()
    if (E.isLeft(sent)) throw new Error(sent.left.message)
    expect(sent.right.companionWritten).toBe(true)
    expect(applied).toBe(1)
    expect(calls.appendMany + calls.append).toBe(1)
    // The outcome it was built from is the result: routed state, version and updatedAt.
    expect(seen.at(-1)).toEqual({
      state: sent.right.state,
      version: sent.right.version,
      updatedAt: sent.right.updatedAt,
    })
    expect(sent.right.state.exists && sent.right.state.status).toBe('pending')
  })

  it('a companion of a kind the store does not take is left to the caller, and a refused command writes none', async () => {
    const { store } = countingStore(createInMemoryEventStore())
    const w = await createWorld({ store })
    await w.addSpecialist('spec-a', 1)
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    const other = await w.engine.referrals.execute(
      unsafeId<ReferralId>('c-2'),
      { type: 'SendReferral', data: w.sendData('c-2') },
      ctx,
      { companion: () => ({ kind: 'elsewhere' }) },
    )()
    expect(E.isRight(other) && other.right.companionWritten).toBeUndefined()
    let applied = 0
    const again = await w.engine.referrals.execute(
      unsafeId<ReferralId>('c-2'),
      { type: 'SendReferral', data: w.sendData('c-2') },
      ctx,
      { companion: () => ({ kind: IN_MEMORY_COMPANION, apply: () => applied++ }) },
    )()
    expect(E.isLeft(again)).toBe(true)
    expect(applied).toBe(0)
    const refused = await store.appendMany(
      [
        {
          streamId: unsafeId('x-1'),
          expected: { kind: 'no_stream' },
          events: [{ id: unsafeId('e-1'), type: 'X', schemaVersion: 1, data: {}, metadata: {} as never }],
        },
      ],
      { companions: [{ kind: 'elsewhere' }] },
    )()
    expect(E.isLeft(refused) && refused.left.message).toContain('companion writes of kind elsewhere')
    expect(await store.readStream(unsafeId('x-1'))()).toEqual(E.right([]))
  })

  it('plans on the cached pool without reading it while this engine is its only writer; another writer is found by the append', async () => {
    const { store, calls, reset } = countingStore(createInMemoryEventStore())
    const w = await createWorld({ store })
    await w.addSpecialist('spec-a', 1)
    await w.addSpecialist('spec-b', 1)
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    const send = (engine: typeof w.engine, id: string) =>
      w.must(
        engine.referrals.execute(
          unsafeId<ReferralId>(id),
          { type: 'SendReferral', data: w.sendData(id) },
          ctx,
        ),
      )
    await send(w.engine, 'o-0') // reads the pool
    await send(w.engine, 'o-1') // reads it again and finds nothing new: the cache is the pool
    reset()
    await send(w.engine, 'o-2')
    const poolReads = () => [...calls.reads].filter(([id]) => id.startsWith('pool-'))
    expect(poolReads()).toEqual([])
    expect(calls.appendMany).toBe(1)
    // Another process decides in the pool: this engine's guess fails at the append, it reads and plans again.
    const other = createEngine({ store, clock: w.clock, ids: sequentialUuids(7) })
    await send(other, 'o-3')
    reset()
    await send(w.engine, 'o-4')
    expect(calls.appendMany).toBe(2)
    expect(poolReads().map(([, n]) => n)).toEqual([1])
    const verified = await w.routing.verifyPoolOf(unsafeId<ReferralId>('o-0'))
    expect(E.isRight(verified) && verified.right?.ok).toBe(true)
    const holders = await Promise.all(['o-0', 'o-1', 'o-2', 'o-3', 'o-4'].map((id) => w.holderOf(id)))
    expect(holders.filter((h) => h === 'spec-a').length).toBeGreaterThanOrEqual(2)
    expect(holders.filter((h) => h === 'spec-b').length).toBeGreaterThanOrEqual(2)
  })

  it('a command routed after its commit (the pool could not be read) writes no companion: its answer is not final at the commit', async () => {
    const inner = createInMemoryEventStore()
    const flaky: typeof inner = {
      ...inner,
      readStream: (streamId, options) =>
        streamId.startsWith('pool-')
          ? () => Promise.reject(new Error('connection reset'))
          : inner.readStream(streamId, options),
    }
    const w = await createWorld({ store: flaky })
    await w.addSpecialist('spec-a', 1)
    let applied = 0
    const sent = await w.engine.referrals.execute(
      unsafeId<ReferralId>('f-1'),
      { type: 'SendReferral', data: w.sendData('f-1') },
      await w.as(w.ownerOf(w.ids.clinic)),
      { companion: () => ({ kind: IN_MEMORY_COMPANION, apply: () => applied++ }) },
    )()
    if (E.isLeft(sent)) throw new Error(sent.left.message)
    expect(sent.right.companionWritten).toBeUndefined()
    expect(applied).toBe(0)
  })
})
