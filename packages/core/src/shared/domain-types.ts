import * as t from 'io-ts'
import {
  CategoryId,
  type InsuranceNetworkId,
  type PracticeId,
  type RegionId,
  type SpecialtyId,
} from './ids.js'

/**
 * Full-time equivalent: a positive decimal with at most three decimals, at most 10.
 * The router works on `fteMilli` (integer thousandths) so no floating-point rounding can change a
 * routing decision.
 */
export const Fte = t.brand(
  t.number,
  (n): n is t.Branded<number, { readonly Fte: symbol }> =>
    Number.isFinite(n) && n > 0 && n <= 10 && Math.abs(Math.round(n * 1000) - n * 1000) < 1e-6,
  'Fte',
)
export type Fte = t.TypeOf<typeof Fte>
export const fteMilli = (fte: Fte): number => Math.round(fte * 1000)

export const Urgency = t.keyof({ routine: null, urgent: null, emergent: null })
export type Urgency = t.TypeOf<typeof Urgency>

/** A (category, optional subcategory) a specialist receives or a referral is filed under. */
export const CategoryRef = t.readonly(
  t.intersection([t.type({ categoryId: CategoryId }), t.partial({ subcategoryId: CategoryId })]),
)
export type CategoryRef = t.TypeOf<typeof CategoryRef>

/**
 * A specialist practice as seen by whoever sends to it or routes to it. Built by the practice
 * module (`recipientProfile(state)`) and passed inside commands by the application layer, so the
 * referral and routing deciders can check eligibility without I/O.
 */
export interface RecipientProfile {
  readonly practiceId: PracticeId
  readonly verified: boolean
  readonly status: 'active' | 'paused'
  readonly specialtyId: SpecialtyId | null
  readonly regions: readonly RegionId[]
  readonly categories: readonly CategoryRef[]
  readonly fte: Fte | null
  readonly insuranceNetworks: readonly InsuranceNetworkId[]
  readonly preferredProviderListed: boolean
}

/** Does this profile receive referrals filed under `ref`? A category entry without subcategory receives all its subcategories. */
export const receivesCategory = (profile: RecipientProfile, ref: CategoryRef): boolean =>
  profile.categories.some(
    (c) =>
      c.categoryId === ref.categoryId &&
      (c.subcategoryId === undefined || c.subcategoryId === ref.subcategoryId),
  )

/** A catalog entry as seen by a referral command (built by the catalog module). */
export interface CategoryStatus {
  readonly specialtyId: SpecialtyId
  readonly categoryId: CategoryId
  readonly parentId: CategoryId | null
  readonly status: 'proposed' | 'approved' | 'retired'
}

/** The routing pool a pooled referral belongs to. */
export interface PoolKey {
  readonly regionId: RegionId
  readonly specialtyId: SpecialtyId
  readonly categoryId: CategoryId
  readonly subcategoryId: CategoryId | null
}

export const poolStreamName = (key: PoolKey): string =>
  `pool-${key.regionId}:${key.specialtyId}:${key.categoryId}:${key.subcategoryId ?? '*'}`
