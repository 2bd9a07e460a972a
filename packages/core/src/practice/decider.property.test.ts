import fc from 'fast-check'
import { isRight } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { Actor, PracticeRole } from '../shared/actor.js'
import type { Fte } from '../shared/domain-types.js'
import {
  type CategoryId,
  type CommandId,
  type CorrelationId,
  type InsuranceNetworkId,
  type PracticeId,
  type RegionId,
  type SpecialtyId,
  type UserId,
  unsafeId,
} from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { type PracticeCommandPayload, PracticeEvent } from './codecs.js'
import { type PracticeCommand, type PracticeState, practiceDecider } from './decider.js'
import { membersOf, recipientProfile } from './views.js'

const pid = unsafeId<PracticeId>('p1')
const users = ['u0', 'u1', 'u2', 'u3'].map((u) => unsafeId<UserId>(u))

const userArb = fc.constantFrom(...users)
const roleArb = fc.constantFrom<PracticeRole>('owner', 'specialist', 'staff')
const fteArb = fc.integer({ min: 1, max: 10_000 }).map((n) => (n / 1000) as Fte)
const actorArb: fc.Arbitrary<Actor> = fc.oneof(
  userArb.map((userId): Actor => ({ kind: 'user', userId, platformRoles: [], memberships: [] })),
  fc.constant<Actor>({
    kind: 'user',
    userId: unsafeId<UserId>('root'),
    platformRoles: ['admin'],
    memberships: [],
  }),
  fc.constant<Actor>({ kind: 'system', component: 'test' }),
)
const idsArb = <T>(names: string[]) =>
  fc.array(fc.constantFrom(...names), { maxLength: 3 }).map((xs) => xs.map((x) => unsafeId<T>(x)))

const payloadArb: fc.Arbitrary<PracticeCommandPayload> = fc.oneof(
  fc.record({
    type: fc.constant('CreatePractice' as const),
    data: fc.record({
      practiceId: fc.constant(pid),
      name: fc.oneof(fc.constant('Clinic'), fc.string({ maxLength: 130 })),
      kind: fc.constantFrom('clinic' as const, 'specialist' as const),
    }),
  }),
  fc.record({ type: fc.constant('AddMember' as const), data: fc.record({ userId: userArb, role: roleArb }) }),
  fc.record({ type: fc.constant('RemoveMember' as const), data: fc.record({ userId: userArb }) }),
  fc.record({
    type: fc.constant('ChangeMemberRole' as const),
    data: fc.record({ userId: userArb, role: roleArb }),
  }),
  fc.record({
    type: fc.constant('ConfigureSpecialist' as const),
    data: fc.record({
      specialtyId: fc.constantFrom('ortho', 'derm').map((s) => unsafeId<SpecialtyId>(s)),
      regions: idsArb<RegionId>(['north', 'south']),
      categories: fc.array(
        fc.oneof(
          fc.constantFrom('knee', 'hip').map((c) => ({ categoryId: unsafeId<CategoryId>(c) })),
          fc.tuple(fc.constantFrom('knee', 'hip'), fc.constantFrom('knee', 'arthro')).map(([c, s]) => ({
            categoryId: unsafeId<CategoryId>(c),
            subcategoryId: unsafeId<CategoryId>(s),
          })),
        ),
        { maxLength: 3 },
      ),
      fte: fteArb,
      insuranceNetworks: idsArb<InsuranceNetworkId>(['public', 'blue']),
      preferredProviderListed: fc.boolean(),
    }),
  }),
  fc.record({ type: fc.constant('ChangeFte' as const), data: fc.record({ fte: fteArb }) }),
  fc.record({
    type: fc.constant('PauseReceiving' as const),
    data: fc
      .option(fc.string({ maxLength: 600 }), { nil: undefined })
      .map((reason) => (reason === undefined ? {} : { reason })),
  }),
  fc.record({ type: fc.constant('ResumeReceiving' as const), data: fc.constant({}) }),
  fc.record({ type: fc.constant('VerifyPractice' as const), data: fc.constant({}) }),
  fc.record({ type: fc.constant('RevokeVerification' as const), data: fc.constant({}) }),
)

const commandArb: fc.Arbitrary<PracticeCommand> = fc.tuple(payloadArb, actorArb).map(
  ([payload, actor]) =>
    ({
      ...payload,
      meta: {
        commandId: unsafeId<CommandId>('c1'),
        actor,
        now: '2026-03-01T09:00:00.000Z' as Instant,
        correlationId: unsafeId<CorrelationId>('k1'),
      },
    }) as PracticeCommand,
)

/** Invariants every reachable state must satisfy; returns the first violated one. */
const violation = (state: PracticeState): string | null => {
  if (!state.exists) return null
  const members = membersOf(state)
  if (!members.some((m) => m.role === 'owner')) return 'no owner'
  if (new Set(members.map((m) => m.userId)).size !== members.length) return 'duplicate member'
  if (state.name.trim() !== state.name || state.name.length < 1 || state.name.length > 120) return 'bad name'
  if (state.kind === 'clinic' && state.settings !== null) return 'clinic with settings'
  const profile = recipientProfile(state)
  if (profile !== null && profile.regions.length === 0) return 'no region'
  return null
}

describe('practice decider properties', () => {
  it('keeps every invariant, emits only decodable events and never emits twice for the same command', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { minLength: 10, maxLength: 60, size: 'max' }), (commands) => {
        let state = practiceDecider.initialState
        for (const command of commands) {
          const result = practiceDecider.decide(command, state)
          if (!isRight(result)) continue
          for (const event of result.right) expect(PracticeEvent.is(event)).toBe(true)
          state = result.right.reduce(practiceDecider.evolve, state)
          expect(violation(state)).toBeNull()
          // Deciding the same command again on the resulting state restates a fact: nothing new.
          const again = practiceDecider.decide(command, state)
          if (isRight(again)) expect(again.right).toEqual([])
        }
      }),
      { numRuns: 300 },
    )
  })

  it('evolve is total: any sequence of well-typed events folds without throwing', () => {
    const eventArb: fc.Arbitrary<PracticeEvent> = fc.oneof(
      fc.record({
        type: fc.constant('PracticeCreated' as const),
        data: fc.record({
          practiceId: fc.constant(pid),
          name: fc.constant('N'),
          kind: fc.constantFrom('clinic' as const, 'specialist' as const),
          ownerId: userArb,
        }),
      }),
      fc.record({
        type: fc.constantFrom('MemberAdded' as const, 'MemberRemoved' as const),
        data: fc.record({ practiceId: fc.constant(pid), userId: userArb, role: roleArb }),
      }),
      fc.record({
        type: fc.constant('MemberRoleChanged' as const),
        data: fc.record({ practiceId: fc.constant(pid), userId: userArb, previous: roleArb, role: roleArb }),
      }),
      fc.record({
        type: fc.constant('FteChanged' as const),
        data: fc.record({ practiceId: fc.constant(pid), previous: fteArb, fte: fteArb }),
      }),
      fc.record({
        type: fc.constantFrom(
          'ReceivingPaused' as const,
          'ReceivingResumed' as const,
          'PracticeVerified' as const,
          'VerificationRevoked' as const,
        ),
        data: fc.constant({ practiceId: pid }),
      }),
    )
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 30 }), (events) => {
        const state = events.reduce(practiceDecider.evolve, practiceDecider.initialState)
        expect(state.exists).toBe(events.some((e) => e.type === 'PracticeCreated'))
      }),
    )
  })
})
