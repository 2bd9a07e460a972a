/**
 * The benchmark's ten-pool dataset, loaded next to the demo data: a second specialty with ten
 * categories and three verified specialist practices (FTE 1, 0.5, 0.8) serving all ten in the
 * north, so a choose-for-me send for category `c<k>` goes to the pool (spread, north, c<k>) —
 * ten pools with the same members, each its own pool stream. Sends spread over them show what a
 * busy network with many pools does, where the one-pool scenarios serialize on one stream.
 */
import type { Engine } from '@referrals/core'
import { DEMO, demoReferralBody, seedDataset } from '../../packages/http/src/demo.js'

export const SPREAD_POOLS = 10

export const SPREAD = {
  specialty: 'bench-spread',
  specialtyName: 'Spread',
  categories: Array.from({ length: SPREAD_POOLS }, (_, k) => ({
    categoryId: `c${k}`,
    name: `Category ${k}`,
  })),
  specialistCategories: Array.from({ length: SPREAD_POOLS }, (_, k) => `c${k}`),
  specialists: [
    { practiceId: 'spread-a', owner: 'dr-spread-a', fte: 1, regions: ['north'] },
    { practiceId: 'spread-b', owner: 'dr-spread-b', fte: 0.5, regions: ['north'] },
    { practiceId: 'spread-c', owner: 'dr-spread-c', fte: 0.8, regions: ['north'] },
  ],
  admin: DEMO.admin,
} as const

export const seedSpreadPools = (engine: Engine): Promise<boolean> => seedDataset(engine, SPREAD)

/** A choose-for-me send from the demo clinic to pool `k` (0–9) of the ten-pool dataset. */
export const spreadReferralBody = (referralId: string, k: number) => ({
  ...demoReferralBody(referralId),
  specialtyId: SPREAD.specialty,
  category: { categoryId: `c${k % SPREAD_POOLS}` },
})
