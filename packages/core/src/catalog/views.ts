import type { CategoryStatus } from '../shared/domain-types.js'
import type { CategoryId } from '../shared/ids.js'
import type { CodingSystem } from './codecs.js'
import {
  type CatalogCategory,
  type CatalogCoding,
  type CatalogState,
  effectiveCategoryStatus,
} from './decider.js'

/**
 * How a referral command sees a catalog entry; null if the specialty or category does not exist.
 * A subcategory of a retired parent is reported as retired.
 */
export const categoryStatus = (state: CatalogState, categoryId: CategoryId): CategoryStatus | null => {
  if (!state.exists) return null
  const category = state.categories.find((c) => c.categoryId === categoryId)
  if (category === undefined) return null
  return {
    specialtyId: state.specialtyId,
    categoryId,
    parentId: category.parentId,
    status: effectiveCategoryStatus(state, category),
  }
}

/** Every category in proposal order, with its effective status (retired parent ⇒ retired subcategory). */
export const listCategories = (state: CatalogState): readonly CatalogCategory[] =>
  state.exists ? state.categories.map((c) => ({ ...c, status: effectiveCategoryStatus(state, c) })) : []

/** The catalog's coding map, in mapping order. */
export const listCodings = (state: CatalogState): readonly CatalogCoding[] =>
  state.exists ? state.codings : []

/**
 * The live category a (system, code) means in this catalog, or null: unmapped, or mapped to a
 * category that is retired since (mapping does not stop a category from being retired).
 */
export const categoryForCoding = (
  state: CatalogState,
  system: CodingSystem,
  code: string,
): CatalogCategory | null => {
  if (!state.exists) return null
  const row = state.codings.find((c) => c.system === system && c.code === code)
  const category =
    row === undefined ? undefined : state.categories.find((c) => c.categoryId === row.categoryId)
  if (category === undefined) return null
  const status = effectiveCategoryStatus(state, category)
  return status === 'retired' ? null : { ...category, status }
}
