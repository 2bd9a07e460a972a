import { isLeft } from 'fp-ts/lib/Either.js'
import { expect } from 'vitest'
import type { Decider } from '../shared/decider.js'
import { fold } from '../shared/decider.js'

/**
 * Decider specification in the form the business rules are written in:
 *
 *   given(referralDecider)([sent, delivered]).when(accept).thenEmits([accepted])
 *   given(referralDecider)([sent, cancelled]).when(accept).thenFails('referral.invalid_transition')
 */
export const given =
  <C, E, S>(decider: Decider<C, E, S>) =>
  (events: readonly E[]) => ({
    when: (command: C) => {
      const state = fold(decider, events)
      const result = decider.decide(command, state)
      return {
        thenEmits: (expected: readonly E[]): void => {
          if (isLeft(result)) {
            throw new Error(`expected events, got domain error ${result.left.code}: ${result.left.message}`)
          }
          expect(result.right).toEqual(expected)
        },
        thenFails: (code: string): void => {
          if (!isLeft(result)) {
            throw new Error(
              `expected domain error ${code}, got events ${result.right.map((e) => (e as { type?: string }).type).join(', ')}`,
            )
          }
          expect(result.left.code).toBe(code)
        },
        /** The resulting state after the produced events, for assertions on projections. */
        state: (): S => {
          if (isLeft(result)) throw new Error(`expected events, got domain error ${result.left.code}`)
          return result.right.reduce(decider.evolve, state)
        },
      }
    },
  })
