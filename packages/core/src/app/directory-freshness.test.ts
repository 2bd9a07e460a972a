import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { sequentialUuids } from '../shared/id-generator.js'
import type { ReferralId, UserId } from '../shared/ids.js'
import { unsafeId } from '../shared/ids.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import { countingStore } from '../testing/counting-store.js'
import { createWorld } from '../testing/world.js'
import { createEngine, type RequestContext } from './engine.js'

/**
 * The directory (practices and catalogs) is refreshed once per request: the actor's resolution
 * does it, and the command of that request reads neither a catalog stream nor the directory
 * again — unless the actor is reused, or the pool holds events this process did not write.
 */
describe('directory freshness on the write path', () => {
  const setup = async () => {
    const counting = countingStore(createInMemoryEventStore())
    const w = await createWorld({ store: counting.store })
    await w.addSpecialist('spec-a', 1)
    await w.send('warm-up')
    return { ...counting, w }
  }
  /** A second engine (another process) on the same store. */
  const otherEngine = (w: Awaited<ReturnType<typeof setup>>['w']) =>
    createEngine({ store: w.store, clock: w.clock, ids: sequentialUuids(7) })
  const sendAs = (w: Awaited<ReturnType<typeof setup>>['w'], id: string, ctx: RequestContext) =>
    w.engine.referrals.execute(
      unsafeId<ReferralId>(id),
      { type: 'SendReferral', data: w.sendData(id) },
      ctx,
    )()

  it('a send with a freshly resolved actor reads no catalog stream and refreshes the directory only in the resolution', async () => {
    const { w, calls, reset } = await setup()
    reset()
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    expect(calls.readAll).toBe(1) // the resolution
    const sent = await sendAs(w, 'r-1', ctx)
    expect(E.isRight(sent) && sent.right.state.exists && sent.right.state.status).toBe('pending')
    expect(calls.readAll).toBe(1)
    expect(calls.reads.get('catalog-ortho')).toBeUndefined()
  })

  it('an actor used a second time gets a refresh: a category retired since is seen', async () => {
    const { w, calls, reset } = await setup()
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    expect(E.isRight(await sendAs(w, 'r-1', ctx))).toBe(true)
    // Retired by a second engine on the same store: this engine's directory learns it only by reading.
    const other = otherEngine(w)
    await w.must(
      other.catalog.execute(
        w.ids.ortho,
        { type: 'RetireCategory', data: { categoryId: w.ids.knee } },
        w.adminCtx,
      ),
    )
    reset()
    const again = await sendAs(w, 'r-2', ctx)
    expect(calls.readAll).toBeGreaterThan(0)
    expect(E.isLeft(again)).toBe(true)
  })

  it('a category retired in this engine is seen by the next request at once', async () => {
    const { w } = await setup()
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    await w.must(
      w.engine.catalog.execute(
        w.ids.ortho,
        { type: 'RetireCategory', data: { categoryId: w.ids.knee } },
        w.adminCtx,
      ),
    )
    // `ctx` was resolved before the retirement and is still unclaimed: the catalog change refreshed the directory.
    expect(E.isLeft(await sendAs(w, 'r-1', ctx))).toBe(true)
  })

  it('a pool another engine wrote to makes the planning refresh the directory again', async () => {
    const { w, calls, reset } = await setup()
    const other = otherEngine(w)
    const ctx = await w.as(w.ownerOf(w.ids.clinic))
    const otherCtx: RequestContext = {
      actor: await other.directory.resolveActor(unsafeId<UserId>(w.ownerOf(w.ids.clinic)), []),
      correlationId: ctx.correlationId,
    }
    await w.must(
      other.referrals.execute(
        unsafeId<ReferralId>('by-the-other-engine'),
        { type: 'SendReferral', data: w.sendData('by-the-other-engine') },
        otherCtx,
      ),
    )
    reset()
    const sent = await sendAs(w, 'r-1', ctx)
    expect(E.isRight(sent)).toBe(true)
    expect(calls.readAll).toBe(1) // the planning's refresh, after reading the other engine's pool events
  })

  it('an actor built by hand (not resolved by the directory) refreshes as before', async () => {
    const { w, calls, reset } = await setup()
    const resolved = await w.as(w.ownerOf(w.ids.clinic))
    const byHand: RequestContext = { ...resolved, actor: { ...resolved.actor } }
    reset()
    expect(E.isRight(await sendAs(w, 'r-1', byHand))).toBe(true)
    expect(calls.readAll).toBe(2) // the category check and the planning
  })
})
