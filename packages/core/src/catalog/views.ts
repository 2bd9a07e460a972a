import type { CategoryStatus } from '../shared/domain-types.js'
import type { CategoryId } from '../shared/ids.js'
import { type CatalogCategory, type CatalogState, effectiveCategoryStatus } from './decider.js'

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
