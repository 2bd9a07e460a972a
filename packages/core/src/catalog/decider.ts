import { type Either, left, right } from 'fp-ts/lib/Either.js'
import { type Actor, hasPlatformRole } from '../shared/actor.js'
import type { CommandMeta, Decider } from '../shared/decider.js'
import { absurd, type DomainError, domainError } from '../shared/errors.js'
import type { CategoryId, SpecialtyId, UserId } from '../shared/ids.js'
import { type CatalogCommandPayload, type CatalogEvent, CODE_PATTERN, type CodingSystem } from './codecs.js'

export type CatalogCommand = CatalogCommandPayload & { readonly meta: CommandMeta }

/** A category as recorded; `status` is its own status (see `categoryStatus` for the effective one). */
export interface CatalogCategory {
  readonly categoryId: CategoryId
  readonly name: string
  readonly parentId: CategoryId | null
  readonly status: 'proposed' | 'approved' | 'retired'
  readonly proposedBy: UserId
}

/** One row of the catalog's coding map: an external code that means one of its categories. */
export interface CatalogCoding {
  readonly system: CodingSystem
  readonly code: string
  readonly categoryId: CategoryId
}

export interface ExistingCatalog {
  readonly exists: true
  readonly specialtyId: SpecialtyId
  readonly name: string
  /** In the order they were proposed. */
  readonly categories: readonly CatalogCategory[]
  /** The coding map, in the order the codes were first mapped; one row per (system, code). */
  readonly codings: readonly CatalogCoding[]
}

export type CatalogState = { readonly exists: false } | ExistingCatalog

export const catalogInitialState: CatalogState = { exists: false }

export const CATALOG_NAME_MAX = 120

type Decision = Either<DomainError, readonly CatalogEvent[]>

const emit = (...events: CatalogEvent[]): Decision => right(events)
const unchanged: Decision = right([])
const fail = (code: string, message: string): Decision => left(domainError(code, message))
const forbidden = (): Decision => fail('catalog.forbidden', 'The actor may not change this catalog')

const isAdmin = (actor: Actor): boolean => hasPlatformRole(actor, 'admin')

/** Specialists propose categories: any user who is owner or specialist of some practice (memberships resolved by the application layer). */
const mayPropose = (actor: Actor): boolean =>
  isAdmin(actor) ||
  (actor.kind === 'user' && actor.memberships.some((m) => m.role === 'owner' || m.role === 'specialist'))

/** Trimmed name, or null if it is empty or longer than `CATALOG_NAME_MAX`. */
const cleanName = (raw: string): string | null => {
  const name = raw.trim()
  return name.length >= 1 && name.length <= CATALOG_NAME_MAX ? name : null
}
const invalidName = (): Decision =>
  fail('catalog.invalid_name', `A name must be 1 to ${CATALOG_NAME_MAX} characters after trimming`)

/** Names are unique among siblings ignoring case; retired siblings free their name. */
const nameKey = (name: string): string => name.normalize('NFC').toLowerCase()
const nameTaken = (
  catalog: ExistingCatalog,
  parentId: CategoryId | null,
  name: string,
  except: CategoryId | null,
): boolean =>
  catalog.categories.some(
    (c) =>
      c.parentId === parentId &&
      c.status !== 'retired' &&
      c.categoryId !== except &&
      nameKey(c.name) === nameKey(name),
  )

const findCategory = (catalog: ExistingCatalog, id: CategoryId): CatalogCategory | undefined =>
  catalog.categories.find((c) => c.categoryId === id)

/** A subcategory whose parent is retired is retired too: new referrals cannot use it. */
export const effectiveCategoryStatus = (
  catalog: ExistingCatalog,
  category: CatalogCategory,
): CatalogCategory['status'] => {
  if (category.status === 'retired' || category.parentId === null) return category.status
  return findCategory(catalog, category.parentId)?.status === 'retired' ? 'retired' : category.status
}

const decideDefine = (
  data: Extract<CatalogCommand, { type: 'DefineSpecialty' }>['data'],
  meta: CommandMeta,
  state: CatalogState,
): Decision => {
  if (state.exists) return fail('catalog.already_exists', 'A specialty with this id already exists')
  if (!isAdmin(meta.actor)) return forbidden()
  const name = cleanName(data.name)
  if (name === null) return invalidName()
  return emit({ type: 'SpecialtyDefined', data: { specialtyId: data.specialtyId, name } })
}

const decidePropose = (
  data: Extract<CatalogCommand, { type: 'ProposeCategory' }>['data'],
  actor: Actor,
  catalog: ExistingCatalog,
): Decision => {
  if (actor.kind !== 'user' || !mayPropose(actor)) return forbidden()
  const name = cleanName(data.name)
  if (name === null) return invalidName()
  if (findCategory(catalog, data.categoryId) !== undefined)
    return fail('catalog.category_exists', 'A category with this id already exists in this specialty')
  const parentId = data.parentId ?? null
  let parentApproved = true
  if (parentId !== null) {
    const parent = findCategory(catalog, parentId)
    if (parent === undefined) return fail('catalog.parent_not_found', 'The parent category does not exist')
    if (parent.parentId !== null)
      return fail('catalog.too_deep', 'Categories have at most one level of subcategories')
    if (parent.status === 'retired') return fail('catalog.parent_retired', 'The parent category is retired')
    parentApproved = parent.status === 'approved'
  }
  if (nameTaken(catalog, parentId, name, null))
    return fail('catalog.duplicate_name', 'A sibling category already has this name')
  const specialtyId = catalog.specialtyId
  const proposed: CatalogEvent = {
    type: 'CategoryProposed',
    data: { specialtyId, categoryId: data.categoryId, name, parentId, proposedBy: actor.userId },
  }
  // An admin's proposal is approved at once, unless its parent still awaits approval itself.
  return isAdmin(actor) && parentApproved
    ? emit(proposed, { type: 'CategoryApproved', data: { specialtyId, categoryId: data.categoryId } })
    : emit(proposed)
}

const decideExisting = (command: CatalogCommand, catalog: ExistingCatalog): Decision => {
  const { actor } = command.meta
  const specialtyId = catalog.specialtyId
  switch (command.type) {
    case 'DefineSpecialty':
      return fail('catalog.already_exists', 'A specialty with this id already exists')

    case 'ProposeCategory':
      return decidePropose(command.data, actor, catalog)

    case 'ApproveCategory': {
      if (!isAdmin(actor)) return forbidden()
      const category = findCategory(catalog, command.data.categoryId)
      if (category === undefined) return fail('catalog.category_not_found', 'No category with this id')
      if (category.status === 'retired') return fail('catalog.category_retired', 'The category is retired')
      if (category.status === 'approved') return unchanged
      if (category.parentId !== null) {
        const parentStatus = findCategory(catalog, category.parentId)?.status
        if (parentStatus === 'retired')
          return fail('catalog.parent_retired', 'The parent category is retired')
        if (parentStatus !== 'approved')
          return fail('catalog.parent_not_approved', 'Approve the parent category first')
      }
      return emit({ type: 'CategoryApproved', data: { specialtyId, categoryId: category.categoryId } })
    }

    case 'RenameCategory': {
      if (!isAdmin(actor)) return forbidden()
      const category = findCategory(catalog, command.data.categoryId)
      if (category === undefined) return fail('catalog.category_not_found', 'No category with this id')
      if (effectiveCategoryStatus(catalog, category) === 'retired')
        return fail('catalog.category_retired', 'The category is retired')
      const name = cleanName(command.data.name)
      if (name === null) return invalidName()
      if (name === category.name) return unchanged
      if (nameTaken(catalog, category.parentId, name, category.categoryId))
        return fail('catalog.duplicate_name', 'A sibling category already has this name')
      return emit({
        type: 'CategoryRenamed',
        data: { specialtyId, categoryId: category.categoryId, previous: category.name, name },
      })
    }

    case 'RetireCategory': {
      if (!isAdmin(actor)) return forbidden()
      const category = findCategory(catalog, command.data.categoryId)
      if (category === undefined) return fail('catalog.category_not_found', 'No category with this id')
      if (category.status === 'retired') return unchanged
      return emit({ type: 'CategoryRetired', data: { specialtyId, categoryId: category.categoryId } })
    }

    case 'MapCoding': {
      if (!isAdmin(actor)) return forbidden()
      const { system, code, categoryId } = command.data
      if (!CODE_PATTERN[system].test(code))
        return fail('catalog.invalid_code', 'The code is not a valid code of this coding system')
      const category = findCategory(catalog, categoryId)
      if (category === undefined) return fail('catalog.category_not_found', 'No category with this id')
      if (effectiveCategoryStatus(catalog, category) === 'retired')
        return fail('catalog.category_retired', 'The category is retired')
      if (findCoding(catalog, system, code)?.categoryId === categoryId) return unchanged
      return emit({ type: 'CodingMapped', data: { specialtyId, system, code, categoryId } })
    }

    case 'UnmapCoding': {
      if (!isAdmin(actor)) return forbidden()
      const { system, code } = command.data
      if (!CODE_PATTERN[system].test(code))
        return fail('catalog.invalid_code', 'The code is not a valid code of this coding system')
      if (findCoding(catalog, system, code) === undefined) return unchanged
      return emit({ type: 'CodingUnmapped', data: { specialtyId, system, code } })
    }

    default:
      return absurd(command)
  }
}

const findCoding = (
  catalog: ExistingCatalog,
  system: CodingSystem,
  code: string,
): CatalogCoding | undefined => catalog.codings.find((c) => c.system === system && c.code === code)

/**
 * Business rules of a specialty's catalog (SPEC §3). Admins define specialties and approve,
 * rename and retire categories; owners and specialists of any practice (and admins) propose.
 * Depth is at most two (category → subcategory). Admins keep the coding map: a SNOMED CT or
 * LOINC code (checked against the system's code syntax) maps to one live category; mapping a code
 * again moves it; unmapping an unmapped code emits nothing. Restating the current state (approving an
 * approved category, retiring a retired one, renaming to the same name) emits nothing.
 */
export const decideCatalog = (command: CatalogCommand, state: CatalogState): Decision => {
  if (command.type === 'DefineSpecialty') return decideDefine(command.data, command.meta, state)
  if (!state.exists) return fail('catalog.not_found', 'No specialty with this id')
  return decideExisting(command, state)
}

const updateCategory = (
  catalog: ExistingCatalog,
  id: CategoryId,
  change: (c: CatalogCategory) => CatalogCategory,
): ExistingCatalog => ({
  ...catalog,
  categories: catalog.categories.map((c) => (c.categoryId === id ? change(c) : c)),
})

/** Total: events that do not apply to the current state leave it unchanged. */
export const evolveCatalog = (state: CatalogState, event: CatalogEvent): CatalogState => {
  if (event.type === 'SpecialtyDefined') {
    return state.exists
      ? state
      : {
          exists: true,
          specialtyId: event.data.specialtyId,
          name: event.data.name,
          categories: [],
          codings: [],
        }
  }
  if (!state.exists) return state
  switch (event.type) {
    case 'CategoryProposed': {
      const { categoryId, name, parentId, proposedBy } = event.data
      if (findCategory(state, categoryId) !== undefined) return state
      return {
        ...state,
        categories: [...state.categories, { categoryId, name, parentId, proposedBy, status: 'proposed' }],
      }
    }
    case 'CategoryApproved':
      return updateCategory(state, event.data.categoryId, (c) =>
        c.status === 'retired' ? c : { ...c, status: 'approved' },
      )
    case 'CategoryRenamed':
      return updateCategory(state, event.data.categoryId, (c) => ({ ...c, name: event.data.name }))
    case 'CategoryRetired':
      return updateCategory(state, event.data.categoryId, (c) => ({ ...c, status: 'retired' }))
    case 'CodingMapped': {
      const { system, code, categoryId } = event.data
      const row: CatalogCoding = { system, code, categoryId }
      return findCoding(state, system, code) === undefined
        ? { ...state, codings: [...state.codings, row] }
        : { ...state, codings: state.codings.map((c) => (c.system === system && c.code === code ? row : c)) }
    }
    case 'CodingUnmapped':
      return {
        ...state,
        codings: state.codings.filter((c) => !(c.system === event.data.system && c.code === event.data.code)),
      }
    default:
      return absurd(event)
  }
}

export const catalogDecider: Decider<CatalogCommand, CatalogEvent, CatalogState> = {
  decide: decideCatalog,
  evolve: evolveCatalog,
  initialState: catalogInitialState,
}
