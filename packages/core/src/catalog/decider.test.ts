import { isLeft } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { Actor, PracticeRole } from '../shared/actor.js'
import type { CommandMeta } from '../shared/decider.js'
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
import { given } from '../testing/given.js'
import type { CatalogCommandPayload, CatalogEvent } from './codecs.js'
import { type CatalogCommand, catalogDecider } from './decider.js'
import { categoryForCoding, categoryStatus, listCategories, listCodings } from './views.js'

const sid = unsafeId<SpecialtyId>('ortho')
const cid = (s: string) => unsafeId<CategoryId>(s)
const knee = cid('knee')
const hip = cid('hip')
const arthro = cid('arthro')
const rootId = unsafeId<UserId>('root')
const specId = unsafeId<UserId>('spec')

const member = (userId: string, role: PracticeRole): Actor => ({
  kind: 'user',
  userId: unsafeId<UserId>(userId),
  platformRoles: [],
  memberships: [{ practiceId: unsafeId<PracticeId>('p1'), role }],
})
const admin: Actor = { kind: 'user', userId: rootId, platformRoles: ['admin'], memberships: [] }
const specialist = member('spec', 'specialist')
const owner = member('own', 'owner')
const staff = member('staffer', 'staff')
const loner: Actor = { kind: 'user', userId: unsafeId<UserId>('lone'), platformRoles: [], memberships: [] }
const auditor: Actor = {
  kind: 'user',
  userId: unsafeId<UserId>('aud'),
  platformRoles: ['auditor'],
  memberships: [],
}
const system: Actor = { kind: 'system', component: 'scheduler' }

const meta = (actor: Actor): CommandMeta => ({
  commandId: unsafeId<CommandId>('cmd-1'),
  actor,
  now: '2026-03-01T09:00:00.000Z' as Instant,
  correlationId: unsafeId<CorrelationId>('corr-1'),
})
const by = (actor: Actor, payload: CatalogCommandPayload): CatalogCommand =>
  ({ ...payload, meta: meta(actor) }) as CatalogCommand

const defined: CatalogEvent = { type: 'SpecialtyDefined', data: { specialtyId: sid, name: 'Orthopedics' } }
const proposed = (
  categoryId: CategoryId,
  name: string,
  parentId: CategoryId | null = null,
  proposedBy = specId,
) =>
  ({ type: 'CategoryProposed', data: { specialtyId: sid, categoryId, name, parentId, proposedBy } }) as const
const approved = (categoryId: CategoryId): CatalogEvent => ({
  type: 'CategoryApproved',
  data: { specialtyId: sid, categoryId },
})
const retired = (categoryId: CategoryId): CatalogEvent => ({
  type: 'CategoryRetired',
  data: { specialtyId: sid, categoryId },
})
/** Knee (approved) with Arthroplasty consult (approved) beneath it. */
const kneeTree: CatalogEvent[] = [
  defined,
  proposed(knee, 'Knee'),
  approved(knee),
  proposed(arthro, 'Arthroplasty consult', knee),
  approved(arthro),
]

const spec = given(catalogDecider)
const propose = (categoryId: CategoryId, name: string, parentId?: CategoryId) =>
  ({
    type: 'ProposeCategory',
    data: parentId === undefined ? { categoryId, name } : { categoryId, name, parentId },
  }) as const

describe('DefineSpecialty', () => {
  const define = (name = ' Orthopedics ') =>
    ({ type: 'DefineSpecialty', data: { specialtyId: sid, name } }) as const

  it('lets an admin define a specialty with a trimmed name', () => {
    spec([]).when(by(admin, define())).thenEmits([defined])
  })

  it('is for admins only', () => {
    for (const actor of [specialist, owner, loner, auditor, system]) {
      spec([]).when(by(actor, define())).thenFails('catalog.forbidden')
    }
  })

  it('rejects a second definition and an invalid name', () => {
    spec([defined]).when(by(admin, define())).thenFails('catalog.already_exists')
    spec([])
      .when(by(admin, define(' ')))
      .thenFails('catalog.invalid_name')
    spec([])
      .when(by(admin, define('y'.repeat(121))))
      .thenFails('catalog.invalid_name')
  })
})

describe('ProposeCategory', () => {
  it('lets a specialist or an owner of some practice propose', () => {
    spec([defined])
      .when(by(specialist, propose(knee, ' Knee ')))
      .thenEmits([proposed(knee, 'Knee')])
    spec([defined])
      .when(by(owner, propose(knee, 'Knee')))
      .thenEmits([proposed(knee, 'Knee', null, unsafeId<UserId>('own'))])
  })

  it('approves an admin proposal at once', () => {
    spec([defined])
      .when(by(admin, propose(knee, 'Knee')))
      .thenEmits([proposed(knee, 'Knee', null, rootId), approved(knee)])
  })

  it('leaves an admin proposal under a not yet approved parent as proposed', () => {
    spec([defined, proposed(knee, 'Knee')])
      .when(by(admin, propose(arthro, 'Arthroplasty', knee)))
      .thenEmits([proposed(arthro, 'Arthroplasty', knee, rootId)])
  })

  it('forbids staff-only users, users without practice, auditors and the system', () => {
    for (const actor of [staff, loner, auditor, system]) {
      spec([defined])
        .when(by(actor, propose(knee, 'Knee')))
        .thenFails('catalog.forbidden')
    }
  })

  it('needs a defined specialty', () => {
    spec([])
      .when(by(specialist, propose(knee, 'Knee')))
      .thenFails('catalog.not_found')
  })

  it('accepts a subcategory under an existing category', () => {
    spec([defined, proposed(knee, 'Knee'), approved(knee)])
      .when(by(specialist, propose(arthro, 'Arthroplasty consult', knee)))
      .thenEmits([proposed(arthro, 'Arthroplasty consult', knee)])
  })

  it('rejects a missing or retired parent and a third level', () => {
    spec([defined])
      .when(by(specialist, propose(arthro, 'A', knee)))
      .thenFails('catalog.parent_not_found')
    spec([defined, proposed(knee, 'Knee'), retired(knee)])
      .when(by(specialist, propose(arthro, 'A', knee)))
      .thenFails('catalog.parent_retired')
    spec(kneeTree)
      .when(by(specialist, propose(cid('deeper'), 'Deeper', arthro)))
      .thenFails('catalog.too_deep')
  })

  it('rejects a taken id and invalid names', () => {
    spec(kneeTree)
      .when(by(specialist, propose(knee, 'Other')))
      .thenFails('catalog.category_exists')
    spec(kneeTree)
      .when(by(specialist, propose(hip, '   ')))
      .thenFails('catalog.invalid_name')
    spec(kneeTree)
      .when(by(specialist, propose(hip, 'h'.repeat(121))))
      .thenFails('catalog.invalid_name')
    spec([defined])
      .when(by(specialist, propose(hip, 'h'.repeat(120))))
      .thenEmits([proposed(hip, 'h'.repeat(120))])
  })

  it('keeps names unique among siblings, ignoring case', () => {
    spec(kneeTree)
      .when(by(specialist, propose(hip, ' KNEE ')))
      .thenFails('catalog.duplicate_name')
    spec(kneeTree)
      .when(by(specialist, propose(cid('a2'), 'arthroplasty CONSULT', knee)))
      .thenFails('catalog.duplicate_name')
  })

  it('allows the same name under another parent and reuse of a retired name', () => {
    spec([...kneeTree, proposed(hip, 'Hip')])
      .when(by(specialist, propose(cid('hip-arthro'), 'Arthroplasty consult', hip)))
      .thenEmits([proposed(cid('hip-arthro'), 'Arthroplasty consult', hip)])
    spec([...kneeTree, retired(knee)])
      .when(by(specialist, propose(cid('knee2'), 'Knee')))
      .thenEmits([proposed(cid('knee2'), 'Knee')])
  })

  it('does not echo the rejected name', () => {
    const state = kneeTree.reduce(catalogDecider.evolve, catalogDecider.initialState)
    const result = catalogDecider.decide(by(specialist, propose(hip, 'Secret'.repeat(30))), state)
    expect(isLeft(result) && JSON.stringify(result.left).includes('Secret')).toBe(false)
  })
})

describe('ApproveCategory', () => {
  const approve = (categoryId: CategoryId) => ({ type: 'ApproveCategory', data: { categoryId } }) as const

  it('lets an admin approve a proposal, idempotently', () => {
    spec([defined, proposed(knee, 'Knee')])
      .when(by(admin, approve(knee)))
      .thenEmits([approved(knee)])
    spec(kneeTree)
      .when(by(admin, approve(knee)))
      .thenEmits([])
  })

  it('is for admins only', () => {
    spec([defined, proposed(knee, 'Knee')])
      .when(by(specialist, approve(knee)))
      .thenFails('catalog.forbidden')
  })

  it('needs the category, and not retired', () => {
    spec([defined])
      .when(by(admin, approve(knee)))
      .thenFails('catalog.category_not_found')
    spec([defined, proposed(knee, 'Knee'), retired(knee)])
      .when(by(admin, approve(knee)))
      .thenFails('catalog.category_retired')
  })

  it('approves a subcategory only under an approved, live parent', () => {
    spec([defined, proposed(knee, 'Knee'), proposed(arthro, 'A', knee)])
      .when(by(admin, approve(arthro)))
      .thenFails('catalog.parent_not_approved')
    spec([defined, proposed(knee, 'Knee'), proposed(arthro, 'A', knee), retired(knee)])
      .when(by(admin, approve(arthro)))
      .thenFails('catalog.parent_retired')
  })
})

describe('RenameCategory', () => {
  const rename = (categoryId: CategoryId, name: string) =>
    ({ type: 'RenameCategory', data: { categoryId, name } }) as const

  it('records the previous name', () => {
    spec(kneeTree)
      .when(by(admin, rename(knee, ' Knee and leg ')))
      .thenEmits([
        {
          type: 'CategoryRenamed',
          data: { specialtyId: sid, categoryId: knee, previous: 'Knee', name: 'Knee and leg' },
        },
      ])
  })

  it('is a no-op for the same name, and allows a change of case', () => {
    spec(kneeTree)
      .when(by(admin, rename(knee, 'Knee ')))
      .thenEmits([])
    spec(kneeTree)
      .when(by(admin, rename(knee, 'KNEE')))
      .thenEmits([
        {
          type: 'CategoryRenamed',
          data: { specialtyId: sid, categoryId: knee, previous: 'Knee', name: 'KNEE' },
        },
      ])
  })

  it('keeps sibling names unique', () => {
    spec([...kneeTree, proposed(hip, 'Hip')])
      .when(by(admin, rename(hip, 'knee')))
      .thenFails('catalog.duplicate_name')
  })

  it('rejects unknown, retired and subcategories of retired parents, and bad names', () => {
    spec(kneeTree)
      .when(by(admin, rename(hip, 'Hip')))
      .thenFails('catalog.category_not_found')
    spec([...kneeTree, retired(arthro)])
      .when(by(admin, rename(arthro, 'X')))
      .thenFails('catalog.category_retired')
    spec([...kneeTree, retired(knee)])
      .when(by(admin, rename(arthro, 'X')))
      .thenFails('catalog.category_retired')
    spec(kneeTree)
      .when(by(admin, rename(knee, '')))
      .thenFails('catalog.invalid_name')
  })

  it('is for admins only', () => {
    spec(kneeTree)
      .when(by(specialist, rename(knee, 'Knees')))
      .thenFails('catalog.forbidden')
  })
})

describe('RetireCategory', () => {
  const retire = (categoryId: CategoryId) => ({ type: 'RetireCategory', data: { categoryId } }) as const

  it('lets an admin retire a category, idempotently', () => {
    spec(kneeTree)
      .when(by(admin, retire(arthro)))
      .thenEmits([retired(arthro)])
    spec([...kneeTree, retired(arthro)])
      .when(by(admin, retire(arthro)))
      .thenEmits([])
  })

  it('retiring a parent retires use of its subcategories but keeps their history', () => {
    const state = spec(kneeTree)
      .when(by(admin, retire(knee)))
      .state()
    expect(categoryStatus(state, arthro)).toEqual({
      specialtyId: 'ortho',
      categoryId: 'arthro',
      parentId: 'knee',
      status: 'retired',
    })
    expect(listCategories(state).map((c) => [c.categoryId, c.name, c.status])).toEqual([
      ['knee', 'Knee', 'retired'],
      ['arthro', 'Arthroplasty consult', 'retired'],
    ])
  })

  it('can reject a proposal by retiring it', () => {
    spec([defined, proposed(hip, 'Hip')])
      .when(by(admin, retire(hip)))
      .thenEmits([retired(hip)])
  })

  it('is for admins only and needs the category', () => {
    spec(kneeTree)
      .when(by(owner, retire(knee)))
      .thenFails('catalog.forbidden')
    spec(kneeTree)
      .when(by(admin, retire(hip)))
      .thenFails('catalog.category_not_found')
  })
})

describe('categoryStatus / listCategories', () => {
  const stateOf = (events: CatalogEvent[]) =>
    events.reduce(catalogDecider.evolve, catalogDecider.initialState)

  it('reports proposed, approved and unknown categories', () => {
    const state = stateOf([...kneeTree, proposed(hip, 'Hip')])
    expect(categoryStatus(state, knee)).toEqual({
      specialtyId: 'ortho',
      categoryId: 'knee',
      parentId: null,
      status: 'approved',
    })
    expect(categoryStatus(state, hip)?.status).toBe('proposed')
    expect(categoryStatus(state, cid('nope'))).toBeNull()
    expect(categoryStatus(stateOf([]), knee)).toBeNull()
  })

  it('lists categories in proposal order with the current name', () => {
    const state = stateOf([
      ...kneeTree,
      proposed(hip, 'Hip'),
      {
        type: 'CategoryRenamed',
        data: { specialtyId: sid, categoryId: knee, previous: 'Knee', name: 'Knee joint' },
      },
    ])
    expect(listCategories(state)).toEqual([
      { categoryId: 'knee', name: 'Knee joint', parentId: null, status: 'approved', proposedBy: 'spec' },
      {
        categoryId: 'arthro',
        name: 'Arthroplasty consult',
        parentId: 'knee',
        status: 'approved',
        proposedBy: 'spec',
      },
      { categoryId: 'hip', name: 'Hip', parentId: null, status: 'proposed', proposedBy: 'spec' },
    ])
    expect(listCategories(stateOf([]))).toEqual([])
  })
})

describe('authorization matrix', () => {
  const history: CatalogEvent[] = [...kneeTree, proposed(hip, 'Hip')]
  const adminOnly: readonly CatalogCommandPayload[] = [
    { type: 'ApproveCategory', data: { categoryId: hip } },
    { type: 'RenameCategory', data: { categoryId: knee, name: 'Knees' } },
    { type: 'RetireCategory', data: { categoryId: knee } },
  ]
  for (const [who, actor] of Object.entries({ specialist, owner, staff, loner, auditor, system })) {
    for (const payload of adminOnly) {
      it(`${who} may not ${payload.type}`, () => {
        spec(history).when(by(actor, payload)).thenFails('catalog.forbidden')
      })
    }
  }
  for (const payload of adminOnly) {
    it(`admin may ${payload.type}`, () => {
      const result = catalogDecider.decide(
        by(admin, payload),
        history.reduce(catalogDecider.evolve, catalogDecider.initialState),
      )
      expect(isLeft(result) ? result.left.code : result.right.length).toBe(1)
    })
  }
})

describe('coding map (MapCoding, UnmapCoding)', () => {
  const SNOMED = 'http://snomed.info/sct' as const
  const LOINC = 'http://loinc.org' as const
  const map = (system: typeof SNOMED | typeof LOINC, code: string, categoryId: CategoryId) =>
    ({ type: 'MapCoding', data: { system, code, categoryId } }) as const
  const mapped = (
    system: typeof SNOMED | typeof LOINC,
    code: string,
    categoryId: CategoryId,
  ): CatalogEvent => ({
    type: 'CodingMapped',
    data: { specialtyId: sid, system, code, categoryId },
  })
  const unmapped = (system: typeof SNOMED | typeof LOINC, code: string): CatalogEvent => ({
    type: 'CodingUnmapped',
    data: { specialtyId: sid, system, code },
  })

  it('lets an admin map a SNOMED CT or LOINC code to a live category or subcategory', () => {
    spec(kneeTree)
      .when(by(admin, map(SNOMED, '72696002', knee)))
      .thenEmits([mapped(SNOMED, '72696002', knee)])
    spec(kneeTree)
      .when(by(admin, map(LOINC, '11488-4', arthro)))
      .thenEmits([mapped(LOINC, '11488-4', arthro)])
  })

  it('is for admins only', () => {
    for (const actor of [specialist, owner, staff, loner, auditor, system]) {
      spec(kneeTree)
        .when(by(actor, map(SNOMED, '72696002', knee)))
        .thenFails('catalog.forbidden')
      spec([...kneeTree, mapped(SNOMED, '72696002', knee)])
        .when(by(actor, { type: 'UnmapCoding', data: { system: SNOMED, code: '72696002' } }))
        .thenFails('catalog.forbidden')
    }
  })

  it('refuses a code that is not of the system, an unknown or retired category, an unknown specialty', () => {
    for (const [system, code] of [
      [SNOMED, '11488-4'],
      [SNOMED, '0123456'],
      [SNOMED, '12345'],
      [LOINC, '72696002'],
      [LOINC, '11488-42'],
    ] as const)
      spec(kneeTree)
        .when(by(admin, map(system, code, knee)))
        .thenFails('catalog.invalid_code')
    spec(kneeTree)
      .when(by(admin, map(SNOMED, '72696002', hip)))
      .thenFails('catalog.category_not_found')
    spec([...kneeTree, retired(knee)])
      .when(by(admin, map(SNOMED, '72696002', arthro)))
      .thenFails('catalog.category_retired')
    spec([])
      .when(by(admin, map(SNOMED, '72696002', knee)))
      .thenFails('catalog.not_found')
    spec(kneeTree)
      .when(by(admin, { type: 'UnmapCoding', data: { system: LOINC, code: 'x' } }))
      .thenFails('catalog.invalid_code')
  })

  it('moves a remapped code, emits nothing for the same mapping or unmapping an unmapped code', () => {
    const withKnee = [...kneeTree, mapped(SNOMED, '72696002', knee)]
    spec(withKnee)
      .when(by(admin, map(SNOMED, '72696002', arthro)))
      .thenEmits([mapped(SNOMED, '72696002', arthro)])
    spec(withKnee)
      .when(by(admin, map(SNOMED, '72696002', knee)))
      .thenEmits([])
    spec(withKnee)
      .when(by(admin, { type: 'UnmapCoding', data: { system: SNOMED, code: '72696002' } }))
      .thenEmits([unmapped(SNOMED, '72696002')])
    spec(withKnee)
      .when(by(admin, { type: 'UnmapCoding', data: { system: LOINC, code: '11488-4' } }))
      .thenEmits([])
  })

  it('answers the live category of a code, one row per code, none once unmapped or the category retired', () => {
    const state = [
      ...kneeTree,
      mapped(SNOMED, '72696002', knee),
      mapped(LOINC, '11488-4', knee),
      mapped(SNOMED, '72696002', arthro),
    ].reduce(catalogDecider.evolve, catalogDecider.initialState)
    expect(listCodings(state)).toEqual([
      { system: SNOMED, code: '72696002', categoryId: arthro },
      { system: LOINC, code: '11488-4', categoryId: knee },
    ])
    expect(categoryForCoding(state, SNOMED, '72696002')?.categoryId).toBe(arthro)
    expect(categoryForCoding(state, LOINC, '72696002')).toBeNull()
    const gone = catalogDecider.evolve(state, unmapped(SNOMED, '72696002'))
    expect(categoryForCoding(gone, SNOMED, '72696002')).toBeNull()
    // Retiring the parent retires the subcategory: its codes no longer resolve.
    const retiredParent = catalogDecider.evolve(state, retired(knee))
    expect(categoryForCoding(retiredParent, SNOMED, '72696002')).toBeNull()
    expect(categoryForCoding(retiredParent, LOINC, '11488-4')).toBeNull()
  })
})
