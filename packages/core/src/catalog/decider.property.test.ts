import fc from 'fast-check'
import { isRight } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { Actor } from '../shared/actor.js'
import {
  type CategoryId,
  type CommandId,
  type CorrelationId,
  type PracticeId,
  type SpecialtyId,
  type UserId,
  unsafeId,
} from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { type CatalogCommandPayload, CatalogEvent } from './codecs.js'
import { type CatalogCommand, type CatalogState, catalogDecider } from './decider.js'
import { categoryStatus, listCategories } from './views.js'

const sid = unsafeId<SpecialtyId>('ortho')
const categoryArb = fc.constantFrom('c1', 'c2', 'c3', 'c4', 'c5').map((c) => unsafeId<CategoryId>(c))
// Few distinct names, differing in case and padding, so uniqueness rules are exercised.
const nameArb = fc.oneof(
  { arbitrary: fc.constantFrom('Knee', 'knee ', ' KNEE', 'Hip', 'hip', 'Spine', '', '   '), weight: 4 },
  { arbitrary: fc.string({ maxLength: 130 }), weight: 1 },
)
const actorArb: fc.Arbitrary<Actor> = fc.constantFrom<Actor>(
  { kind: 'user', userId: unsafeId<UserId>('root'), platformRoles: ['admin'], memberships: [] },
  {
    kind: 'user',
    userId: unsafeId<UserId>('spec'),
    platformRoles: [],
    memberships: [{ practiceId: unsafeId<PracticeId>('p1'), role: 'specialist' }],
  },
  {
    kind: 'user',
    userId: unsafeId<UserId>('staff'),
    platformRoles: [],
    memberships: [{ practiceId: unsafeId<PracticeId>('p1'), role: 'staff' }],
  },
  { kind: 'system', component: 'test' },
)

const payloadArb: fc.Arbitrary<CatalogCommandPayload> = fc.oneof(
  fc.record({
    type: fc.constant('DefineSpecialty' as const),
    data: fc.record({ specialtyId: fc.constant(sid), name: nameArb }),
  }),
  fc.record({
    type: fc.constant('ProposeCategory' as const),
    data: fc
      .tuple(categoryArb, nameArb, fc.option(categoryArb, { nil: undefined, freq: 2 }))
      .map(([categoryId, name, parentId]) =>
        parentId === undefined ? { categoryId, name } : { categoryId, name, parentId },
      ),
  }),
  fc.record({ type: fc.constant('ApproveCategory' as const), data: fc.record({ categoryId: categoryArb }) }),
  fc.record({
    type: fc.constant('RenameCategory' as const),
    data: fc.record({ categoryId: categoryArb, name: nameArb }),
  }),
  fc.record({ type: fc.constant('RetireCategory' as const), data: fc.record({ categoryId: categoryArb }) }),
)

const commandArb: fc.Arbitrary<CatalogCommand> = fc.tuple(payloadArb, actorArb).map(
  ([payload, actor]) =>
    ({
      ...payload,
      meta: {
        commandId: unsafeId<CommandId>('c1'),
        actor,
        now: '2026-03-01T09:00:00.000Z' as Instant,
        correlationId: unsafeId<CorrelationId>('k1'),
      },
    }) as CatalogCommand,
)

/** Invariants every reachable catalog must satisfy; returns the first violated one. */
const violation = (state: CatalogState): string | null => {
  if (!state.exists) return null
  const categories = state.categories
  if (new Set(categories.map((c) => c.categoryId)).size !== categories.length) return 'duplicate id'
  for (const c of categories) {
    if (c.name !== c.name.trim() || c.name.length < 1 || c.name.length > 120) return 'bad name'
    if (c.parentId !== null) {
      const parent = categories.find((p) => p.categoryId === c.parentId)
      if (parent === undefined) return 'dangling parent'
      if (parent.parentId !== null) return 'too deep'
      if (c.status === 'approved' && parent.status === 'proposed') return 'approved under a proposal'
    }
    const live = categories.filter(
      (s) =>
        s.parentId === c.parentId && s.status !== 'retired' && s.name.toLowerCase() === c.name.toLowerCase(),
    )
    if (c.status !== 'retired' && live.length > 1) return 'duplicate sibling name'
    const status = categoryStatus(state, c.categoryId)?.status
    const parentRetired = c.parentId !== null && categoryStatus(state, c.parentId)?.status === 'retired'
    if (parentRetired && status !== 'retired') return 'live child of a retired parent'
  }
  if (listCategories(state).length !== categories.length) return 'list incomplete'
  return null
}

describe('catalog decider properties', () => {
  it('keeps every invariant, emits only decodable events and never emits twice for the same command', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(commandArb, { minLength: 10, maxLength: 60, size: 'max' }),
        (predefined, commands) => {
          // Most interesting sequences need the specialty to exist; half the runs start with it.
          let state = predefined
            ? catalogDecider.evolve(catalogDecider.initialState, {
                type: 'SpecialtyDefined',
                data: { specialtyId: sid, name: 'Orthopedics' },
              })
            : catalogDecider.initialState
          for (const command of commands) {
            const result = catalogDecider.decide(command, state)
            if (!isRight(result)) continue
            for (const event of result.right) expect(CatalogEvent.is(event)).toBe(true)
            state = result.right.reduce(catalogDecider.evolve, state)
            expect(violation(state)).toBeNull()
            const again = catalogDecider.decide(command, state)
            if (isRight(again)) expect(again.right).toEqual([])
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('evolve is total: any sequence of well-typed events folds without throwing', () => {
    const eventArb: fc.Arbitrary<CatalogEvent> = fc.oneof(
      fc.record({
        type: fc.constant('SpecialtyDefined' as const),
        data: fc.record({ specialtyId: fc.constant(sid), name: fc.string() }),
      }),
      fc.record({
        type: fc.constant('CategoryProposed' as const),
        data: fc.record({
          specialtyId: fc.constant(sid),
          categoryId: categoryArb,
          name: fc.string(),
          parentId: fc.option(categoryArb, { nil: null }),
          proposedBy: fc.constant(unsafeId<UserId>('u')),
        }),
      }),
      fc.record({
        type: fc.constantFrom('CategoryApproved' as const, 'CategoryRetired' as const),
        data: fc.record({ specialtyId: fc.constant(sid), categoryId: categoryArb }),
      }),
      fc.record({
        type: fc.constant('CategoryRenamed' as const),
        data: fc.record({
          specialtyId: fc.constant(sid),
          categoryId: categoryArb,
          previous: fc.string(),
          name: fc.string(),
        }),
      }),
    )
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 30 }), (events) => {
        const state = events.reduce(catalogDecider.evolve, catalogDecider.initialState)
        expect(state.exists).toBe(events.some((e) => e.type === 'SpecialtyDefined'))
        for (const c of listCategories(state)) categoryStatus(state, c.categoryId)
      }),
    )
  })
})
