import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { Actor } from '../shared/actor.js'
import { sequentialIds } from '../shared/id-generator.js'
import {
  type CategoryId,
  type CorrelationId,
  type PatientId,
  type PracticeId,
  type ReferralId,
  type RegionId,
  type SpecialtyId,
  type UserId,
  unsafeId,
} from '../shared/ids.js'
import { HOUR_MS, type Instant, manualClock } from '../shared/time.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import { createEngine, type RequestContext } from './engine.js'

const id = unsafeId
const admin: Actor = { kind: 'user', userId: id<UserId>('admin'), platformRoles: ['admin'], memberships: [] }
const ortho = id<SpecialtyId>('ortho')
const knee = id<CategoryId>('knee')
const north = id<RegionId>('north')
const clinic = id<PracticeId>('clinic')
const spec = id<PracticeId>('spec-a')

const setup = async () => {
  const clock = manualClock('2026-03-02T08:00:00.000Z' as Instant)
  const store = createInMemoryEventStore({ clock })
  const engine = createEngine({ store, clock, ids: sequentialIds('id') })
  const as = async (
    userId: string,
    roles: readonly ('admin' | 'auditor')[] = [],
  ): Promise<RequestContext> => ({
    actor: await engine.directory.resolveActor(id<UserId>(userId), roles),
    correlationId: id<CorrelationId>('corr'),
  })
  const must = async <A>(task: () => Promise<E.Either<{ readonly message: string }, A>>) => {
    const r = await task()
    if (E.isLeft(r)) throw new Error(r.left.message)
    return r.right
  }
  const adminCtx = { actor: admin, correlationId: id<CorrelationId>('corr') }
  await must(
    engine.catalog.execute(
      ortho,
      { type: 'DefineSpecialty', data: { specialtyId: ortho, name: 'Orthopedics' } },
      adminCtx,
    ),
  )
  await must(
    engine.catalog.execute(
      ortho,
      { type: 'ProposeCategory', data: { categoryId: knee, name: 'Knee' } },
      adminCtx,
    ),
  )
  // An admin's proposal is approved at once (catalog rule), so no ApproveCategory is needed.
  await must(
    engine.practices.execute(
      clinic,
      { type: 'CreatePractice', data: { practiceId: clinic, name: 'Clinic', kind: 'clinic' } },
      await as('dr-gp'),
    ),
  )
  await must(
    engine.practices.execute(
      spec,
      { type: 'CreatePractice', data: { practiceId: spec, name: 'Spec A', kind: 'specialist' } },
      await as('dr-a'),
    ),
  )
  await must(
    engine.practices.execute(
      spec,
      {
        type: 'ConfigureSpecialist',
        data: {
          specialtyId: ortho,
          regions: [north],
          categories: [{ categoryId: knee }],
          fte: 1 as never,
          insuranceNetworks: [],
          preferredProviderListed: true,
        },
      },
      await as('dr-a'),
    ),
  )
  return { engine, store, clock, as, must, adminCtx }
}

const sendDirect = (referralId: string) => ({
  type: 'SendReferral' as const,
  data: {
    referralId: id<ReferralId>(referralId),
    senderPracticeId: clinic,
    patientId: id<PatientId>('pat-1'),
    phi: {
      patient: { givenName: 'Canary', familyName: 'Person', dateOfBirth: '1980-01-01' },
      reason: 'Knee pain',
    },
    specialtyId: ortho,
    category: { categoryId: knee },
    regionId: north,
    urgency: 'routine' as const,
    target: { kind: 'direct' as const, practiceId: spec },
  },
})

describe('engine: direct referrals end to end on the in-memory store', () => {
  it('refuses to deliver to a specialist an admin has not verified, then delivers once verified', async () => {
    const { engine, as, must, adminCtx } = await setup()
    const refused = await engine.referrals.execute(id('r-1'), sendDirect('r-1'), await as('dr-gp'))()
    expect(E.isLeft(refused)).toBe(true)
    await must(engine.practices.execute(spec, { type: 'VerifyPractice', data: {} }, adminCtx))
    const sent = await must(engine.referrals.execute(id('r-1'), sendDirect('r-1'), await as('dr-gp')))
    expect(sent.state.exists && sent.state.status).toBe('pending')
    expect(sent.state.exists && sent.state.recipientPracticeId).toBe(spec)
  })

  it('lets only members of the recipient accept; stamps actor and time from the ports', async () => {
    const { engine, clock, as, must, adminCtx, store } = await setup()
    await must(engine.practices.execute(spec, { type: 'VerifyPractice', data: {} }, adminCtx))
    await must(engine.referrals.execute(id('r-1'), sendDirect('r-1'), await as('dr-gp')))
    const byOutsider = await engine.referrals.execute(
      id('r-1'),
      { type: 'AcceptReferral', data: {} },
      await as('dr-gp'),
    )()
    expect(E.isLeft(byOutsider) && byOutsider.left).toMatchObject({ code: 'referral.forbidden' })
    clock.advance(2 * HOUR_MS)
    const accepted = await must(
      engine.referrals.execute(id('r-1'), { type: 'AcceptReferral', data: {} }, await as('dr-a')),
    )
    expect(accepted.state.exists && accepted.state.status).toBe('accepted')
    const last = store.snapshot().at(-1)
    expect(last?.type).toBe('ReferralAccepted')
    expect(last?.metadata.occurredAt).toBe('2026-03-02T10:00:00.000Z')
    expect(last?.metadata.actor).toMatchObject({ kind: 'user', userId: 'dr-a' })
  })

  it('reads a referral as of a past instant', async () => {
    const { engine, clock, as, must, adminCtx } = await setup()
    await must(engine.practices.execute(spec, { type: 'VerifyPractice', data: {} }, adminCtx))
    await must(engine.referrals.execute(id('r-1'), sendDirect('r-1'), await as('dr-gp')))
    const beforeAccept = clock.now()
    clock.advance(HOUR_MS)
    await must(engine.referrals.execute(id('r-1'), { type: 'AcceptReferral', data: {} }, await as('dr-a')))
    const past = await must(engine.referrals.load(id('r-1'), { asOf: beforeAccept }))
    const now = await must(engine.referrals.load(id('r-1')))
    expect(past.state.exists && past.state.status).toBe('pending')
    expect(now.state.exists && now.state.status).toBe('accepted')
  })

  it('lists sent and received referrals with filters and keyset pagination', async () => {
    const { engine, clock, as, must, adminCtx } = await setup()
    await must(engine.practices.execute(spec, { type: 'VerifyPractice', data: {} }, adminCtx))
    for (const n of [1, 2, 3]) {
      clock.advance(60_000)
      await must(engine.referrals.execute(id(`r-${n}`), sendDirect(`r-${n}`), await as('dr-gp')))
    }
    await must(engine.referrals.execute(id('r-2'), { type: 'AcceptReferral', data: {} }, await as('dr-a')))
    const sent = await engine.referralIndex.list({ practiceId: clinic, box: 'sent', limit: 2 })
    const page1 = E.isRight(sent) ? sent.right : null
    expect(page1?.items.map((s) => s.referralId)).toEqual(['r-3', 'r-2'])
    const next = await engine.referralIndex.list({
      practiceId: clinic,
      box: 'sent',
      limit: 2,
      cursor: page1?.nextCursor ?? '',
    })
    expect(E.isRight(next) && next.right.items.map((s) => s.referralId)).toEqual(['r-1'])
    expect(E.isRight(next) && next.right.nextCursor).toBeNull()
    const accepted = await engine.referralIndex.list({
      practiceId: spec,
      box: 'received',
      status: ['accepted'],
    })
    expect(E.isRight(accepted) && accepted.right.items.map((s) => s.referralId)).toEqual(['r-2'])
    const wrongBox = await engine.referralIndex.list({ practiceId: clinic, box: 'received' })
    expect(E.isRight(wrongBox) && wrongBox.right.items).toEqual([])
    expect(await engine.referralIndex.list({ practiceId: clinic, box: 'sent', cursor: 'garbage' })).toEqual(
      E.left('invalid_cursor'),
    )
  })
})
