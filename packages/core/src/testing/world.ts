import * as E from 'fp-ts/lib/Either.js'
import { createEngine, type EngineOptions, type RequestContext } from '../app/engine.js'
import type { SendReferralData } from '../referral/codecs.js'
import type { Actor, PlatformRole } from '../shared/actor.js'
import type { Fte, Urgency } from '../shared/domain-types.js'
import { sequentialUuids } from '../shared/id-generator.js'
import {
  type CategoryId,
  type CorrelationId,
  type InsuranceNetworkId,
  type PatientId,
  type PracticeId,
  type ReferralId,
  type RegionId,
  type SpecialtyId,
  type UserId,
  unsafeId,
} from '../shared/ids.js'
import { type Instant, manualClock } from '../shared/time.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import type { EventStore } from '../store/port.js'

/**
 * A small, fully wired engine for scenario tests: one specialty (`ortho`) with categories `knee`
 * and `hip`, region `north`, a referring clinic, a manual clock and helpers to add specialists
 * and send referrals. Every step goes through the real engine and deciders.
 */
export const createWorld = async (options: { readonly store?: EventStore } & Partial<EngineOptions> = {}) => {
  const clock = manualClock('2026-03-02T08:00:00.000Z' as Instant)
  const store = options.store ?? createInMemoryEventStore({ clock })
  const engine = createEngine({ ids: sequentialUuids(), ...options, store, clock })
  const routing = engine.routing
  const ortho = unsafeId<SpecialtyId>('ortho')
  const knee = unsafeId<CategoryId>('knee')
  const hip = unsafeId<CategoryId>('hip')
  const north = unsafeId<RegionId>('north')
  const clinic = unsafeId<PracticeId>('clinic')
  const admin: Actor = {
    kind: 'user',
    userId: unsafeId<UserId>('admin'),
    platformRoles: ['admin'],
    memberships: [],
  }
  const correlationId = unsafeId<CorrelationId>('corr')
  const adminCtx: RequestContext = { actor: admin, correlationId }

  const must = async <A>(task: () => Promise<E.Either<{ readonly message: string }, A>>): Promise<A> => {
    const r = await task()
    if (E.isLeft(r)) throw new Error(r.left.message)
    return r.right
  }
  const as = async (userId: string, roles: readonly PlatformRole[] = []): Promise<RequestContext> => ({
    actor: await engine.directory.resolveActor(unsafeId<UserId>(userId), roles),
    correlationId,
  })
  /** The owner user of a practice created by this world. */
  const ownerOf = (practiceId: string) => `owner-${practiceId}`

  await must(
    engine.catalog.execute(
      ortho,
      { type: 'DefineSpecialty', data: { specialtyId: ortho, name: 'Orthopedics' } },
      adminCtx,
    ),
  )
  for (const [categoryId, name] of [
    [knee, 'Knee'],
    [hip, 'Hip'],
  ] as const) {
    await must(
      engine.catalog.execute(ortho, { type: 'ProposeCategory', data: { categoryId, name } }, adminCtx),
    )
  }
  await must(
    engine.practices.execute(
      clinic,
      { type: 'CreatePractice', data: { practiceId: clinic, name: 'Clinic', kind: 'clinic' } },
      await as(ownerOf(clinic)),
    ),
  )

  const addSpecialist = async (
    id: string,
    fte: number,
    opts: {
      readonly verified?: boolean
      readonly categories?: readonly CategoryId[]
      readonly insuranceNetworks?: readonly string[]
    } = {},
  ): Promise<PracticeId> => {
    const practiceId = unsafeId<PracticeId>(id)
    const owner = await as(ownerOf(id))
    await must(
      engine.practices.execute(
        practiceId,
        { type: 'CreatePractice', data: { practiceId, name: id, kind: 'specialist' } },
        owner,
      ),
    )
    await must(
      engine.practices.execute(
        practiceId,
        {
          type: 'ConfigureSpecialist',
          data: {
            specialtyId: ortho,
            regions: [north],
            categories: (opts.categories ?? [knee, hip]).map((categoryId) => ({ categoryId })),
            fte: fte as Fte,
            insuranceNetworks: (opts.insuranceNetworks ?? []).map((n) => unsafeId<InsuranceNetworkId>(n)),
            preferredProviderListed: true,
          },
        },
        await as(ownerOf(id)),
      ),
    )
    if (opts.verified !== false) {
      await must(engine.practices.execute(practiceId, { type: 'VerifyPractice', data: {} }, adminCtx))
    }
    return practiceId
  }

  const sendData = (
    referralId: string,
    target: SendReferralData['target'] = { kind: 'pooled' },
    opts: {
      readonly urgency?: Urgency
      readonly insuranceNetworkId?: string
      readonly category?: CategoryId
    } = {},
  ): SendReferralData => ({
    referralId: unsafeId<ReferralId>(referralId),
    senderPracticeId: clinic,
    patientId: unsafeId<PatientId>(`pat-${referralId}`),
    phi: {
      patient: {
        givenName: 'Canary',
        familyName: `Patient-${referralId}`,
        dateOfBirth: '1980-01-01',
        healthNumber: `HN-${referralId}`,
      },
      reason: `Canary reason ${referralId}`,
    },
    specialtyId: ortho,
    category: { categoryId: opts.category ?? knee },
    regionId: north,
    urgency: opts.urgency ?? 'routine',
    target,
    ...(opts.insuranceNetworkId === undefined
      ? {}
      : { insuranceNetworkId: unsafeId<InsuranceNetworkId>(opts.insuranceNetworkId) }),
  })

  const send = async (
    referralId: string,
    target?: SendReferralData['target'],
    opts?: Parameters<typeof sendData>[2],
  ) =>
    must(
      engine.referrals.execute(
        unsafeId<ReferralId>(referralId),
        { type: 'SendReferral', data: sendData(referralId, target, opts) },
        await as(ownerOf(clinic)),
      ),
    )

  /** The practice currently holding a referral, or null. */
  const holderOf = async (referralId: string) => {
    const loaded = await must(engine.referrals.load(unsafeId<ReferralId>(referralId)))
    return loaded.state.exists ? loaded.state.recipientPracticeId : null
  }
  const statusOf = async (referralId: string) => {
    const loaded = await must(engine.referrals.load(unsafeId<ReferralId>(referralId)))
    return loaded.state.exists ? loaded.state.status : null
  }

  return {
    engine,
    routing,
    store,
    clock,
    ids: { ortho, knee, hip, north, clinic },
    adminCtx,
    must,
    as,
    ownerOf,
    addSpecialist,
    sendData,
    send,
    holderOf,
    statusOf,
  }
}

export type World = Awaited<ReturnType<typeof createWorld>>
