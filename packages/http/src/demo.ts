import {
  type Actor,
  type CodingSystem,
  type CorrelationId,
  catalogStreamId,
  type Engine,
  type Fte,
  type PracticeId,
  type RegionId,
  type SpecialtyId,
  type UserId,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'

/**
 * The demo dataset `referrals serve --demo` loads once into an empty store: two regions, one
 * specialty with categories and a subcategory, four verified specialist practices with different
 * FTE (one also accepting a specific insurance network), one referring clinic, and the demo users
 * below. No patient data: referrals are created by whoever tries the API.
 */
export const DEMO = {
  specialty: 'orthopedics',
  regions: ['north', 'south'],
  clinic: { practiceId: 'demo-clinic', owner: 'dr-gp', staff: 'moa-gp' },
  specialists: [
    { practiceId: 'ortho-north-a', owner: 'dr-north-a', fte: 1, regions: ['north'] },
    { practiceId: 'ortho-north-b', owner: 'dr-north-b', fte: 0.5, regions: ['north'] },
    { practiceId: 'ortho-both-c', owner: 'dr-both-c', fte: 0.8, regions: ['north', 'south'] },
    { practiceId: 'ortho-south-d', owner: 'dr-south-d', fte: 1, regions: ['south'] },
  ],
  admin: 'demo-admin',
  auditor: 'demo-auditor',
  categories: [
    { categoryId: 'knee', name: 'Knee' },
    { categoryId: 'hip', name: 'Hip' },
    { categoryId: 'knee-arthroplasty', name: 'Arthroplasty consult', parentId: 'knee' },
  ],
  /** The coding map: real SNOMED CT concepts for the demo categories (FHIR import reads them). */
  codings: [
    { system: 'http://snomed.info/sct', code: '72696002', categoryId: 'knee' }, // Knee region structure
    { system: 'http://snomed.info/sct', code: '29836001', categoryId: 'hip' }, // Hip region structure
    { system: 'http://snomed.info/sct', code: '609588000', categoryId: 'knee-arthroplasty' }, // Total knee replacement
  ],
} as const

const id = unsafeId

const ctxFor = async (engine: Engine, userId: string, roles: readonly ('admin' | 'auditor')[] = []) => ({
  actor: (await engine.directory.resolveActor(id<UserId>(userId), roles)) as Actor,
  correlationId: id<CorrelationId>('demo-seed'),
})

/**
 * A dataset `seedDataset` loads: one specialty with its categories, verified specialist practices
 * (each serving `specialistCategories` in its regions), and optionally a referring clinic.
 */
export interface SeedDataset {
  readonly specialty: string
  readonly specialtyName: string
  readonly categories: readonly {
    readonly categoryId: string
    readonly name: string
    readonly parentId?: string
  }[]
  readonly specialistCategories: readonly string[]
  /** Coding-map entries (`MapCoding`): a SNOMED CT or LOINC code → one of `categories`. */
  readonly codings?: readonly {
    readonly system: CodingSystem
    readonly code: string
    readonly categoryId: string
  }[]
  readonly specialists: readonly {
    readonly practiceId: string
    readonly owner: string
    readonly fte: number
    readonly regions: readonly string[]
  }[]
  readonly clinic?: { readonly practiceId: string; readonly owner: string; readonly staff: string }
  readonly admin: string
}

/** Loads the demo dataset unless the specialty already exists; returns whether it loaded it. */
export const seedDemo = (engine: Engine): Promise<boolean> =>
  seedDataset(engine, {
    ...DEMO,
    specialtyName: 'Orthopedics',
    specialistCategories: ['knee', 'hip'],
  })

/** Loads `dataset` unless its specialty already exists; returns whether it loaded it. */
export const seedDataset = async (engine: Engine, dataset: SeedDataset): Promise<boolean> => {
  const specialtyId = id<SpecialtyId>(dataset.specialty)
  const existing = await engine.store.streamVersion(catalogStreamId(specialtyId))()
  if (E.isLeft(existing)) throw new Error(`demo seed: ${existing.left.message}`)
  if (existing.right > 0) return false
  const must = async (task: () => Promise<E.Either<{ readonly message: string }, unknown>>, step: string) => {
    const r = await task()
    if (E.isLeft(r)) throw new Error(`demo seed (${step}): ${r.left.message}`)
  }
  const admin = await ctxFor(engine, dataset.admin, ['admin'])
  await must(
    engine.catalog.execute(
      specialtyId,
      { type: 'DefineSpecialty', data: { specialtyId, name: dataset.specialtyName } },
      admin,
    ),
    'specialty',
  )
  for (const c of dataset.categories) {
    const data = {
      categoryId: id(c.categoryId),
      name: c.name,
      ...(c.parentId !== undefined ? { parentId: id(c.parentId) } : {}),
    }
    await must(
      engine.catalog.execute(specialtyId, { type: 'ProposeCategory', data } as never, admin),
      `category ${c.categoryId}`,
    )
  }
  for (const c of dataset.codings ?? []) {
    await must(
      engine.catalog.execute(
        specialtyId,
        { type: 'MapCoding', data: { system: c.system, code: c.code, categoryId: id(c.categoryId) } },
        admin,
      ),
      `coding ${c.code}`,
    )
  }
  const clinic = dataset.clinic
  if (clinic !== undefined) {
    const clinicId = id<PracticeId>(clinic.practiceId)
    await must(
      engine.practices.execute(
        clinicId,
        {
          type: 'CreatePractice',
          data: { practiceId: clinicId, name: 'Lakeside Family Clinic', kind: 'clinic' },
        },
        await ctxFor(engine, clinic.owner),
      ),
      'clinic',
    )
    await must(
      engine.practices.execute(
        clinicId,
        { type: 'AddMember', data: { userId: id(clinic.staff), role: 'staff' } },
        await ctxFor(engine, clinic.owner),
      ),
      'clinic staff',
    )
  }
  for (const s of dataset.specialists) {
    const practiceId = id<PracticeId>(s.practiceId)
    const owner = await ctxFor(engine, s.owner)
    await must(
      engine.practices.execute(
        practiceId,
        {
          type: 'CreatePractice',
          data: { practiceId, name: `${dataset.specialtyName} ${s.practiceId}`, kind: 'specialist' },
        },
        owner,
      ),
      s.practiceId,
    )
    await must(
      engine.practices.execute(
        practiceId,
        {
          type: 'ConfigureSpecialist',
          data: {
            specialtyId,
            regions: s.regions.map((r) => id<RegionId>(r)),
            categories: dataset.specialistCategories.map((c) => ({ categoryId: id(c) })),
            fte: s.fte as Fte,
            insuranceNetworks: [],
            preferredProviderListed: true,
          },
        },
        await ctxFor(engine, s.owner),
      ),
      `${s.practiceId} settings`,
    )
    await must(
      engine.practices.execute(practiceId, { type: 'VerifyPractice', data: {} }, admin),
      `${s.practiceId} verification`,
    )
  }
  return true
}

/** A ready-to-paste request body for a choose-for-me referral with made-up patient data. */
export const demoReferralBody = (referralId: string) => ({
  referralId,
  senderPracticeId: DEMO.clinic.practiceId,
  patientId: `demo-patient-${referralId.slice(0, 8)}`,
  phi: {
    patient: {
      givenName: 'Sample',
      familyName: 'Patient',
      dateOfBirth: '1970-01-01',
      healthNumber: '9999-999-999',
    },
    reason: 'Right knee pain for 6 months, not improving with physiotherapy.',
  },
  specialtyId: DEMO.specialty,
  category: { categoryId: 'knee' },
  regionId: 'north',
  urgency: 'routine',
  target: { kind: 'pooled' },
})
