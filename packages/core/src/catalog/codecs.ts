import * as t from 'io-ts'
import { CategoryId, SpecialtyId, UserId } from '../shared/ids.js'

const command = <T extends string, D extends t.Mixed>(type: T, data: D) =>
  t.readonly(t.strict({ type: t.literal(type), data }))

export const DefineSpecialtyPayload = command(
  'DefineSpecialty',
  t.readonly(t.strict({ specialtyId: SpecialtyId, name: t.string })),
)
export const ProposeCategoryPayload = command(
  'ProposeCategory',
  t.readonly(
    t.exact(
      t.intersection([
        t.type({ categoryId: CategoryId, name: t.string }),
        t.partial({ parentId: CategoryId }),
      ]),
    ),
  ),
)
export const ApproveCategoryPayload = command(
  'ApproveCategory',
  t.readonly(t.strict({ categoryId: CategoryId })),
)
export const RenameCategoryPayload = command(
  'RenameCategory',
  t.readonly(t.strict({ categoryId: CategoryId, name: t.string })),
)
export const RetireCategoryPayload = command(
  'RetireCategory',
  t.readonly(t.strict({ categoryId: CategoryId })),
)

/**
 * Every catalog command as `{ type, data }`: what the HTTP layer decodes request bodies with.
 * The target specialty of all but `DefineSpecialty` is the stream the command is sent to.
 */
export const CatalogCommandPayload = t.union([
  DefineSpecialtyPayload,
  ProposeCategoryPayload,
  ApproveCategoryPayload,
  RenameCategoryPayload,
  RetireCategoryPayload,
])
export type CatalogCommandPayload = t.TypeOf<typeof CatalogCommandPayload>

const event = <T extends string, P extends t.Props>(type: T, props: P) =>
  t.readonly(
    t.strict({ type: t.literal(type), data: t.readonly(t.strict({ specialtyId: SpecialtyId, ...props })) }),
  )

export const SpecialtyDefined = event('SpecialtyDefined', { name: t.string })
export const CategoryProposed = event('CategoryProposed', {
  categoryId: CategoryId,
  name: t.string,
  /** null for a top-level category. */
  parentId: t.union([CategoryId, t.null]),
  proposedBy: UserId,
})
export const CategoryApproved = event('CategoryApproved', { categoryId: CategoryId })
export const CategoryRenamed = event('CategoryRenamed', {
  categoryId: CategoryId,
  previous: t.string,
  name: t.string,
})
export const CategoryRetired = event('CategoryRetired', { categoryId: CategoryId })

/** Every catalog event as `{ type, data }`: decodes events read from `catalog-<specialtyId>` streams. */
export const CatalogEvent = t.union([
  SpecialtyDefined,
  CategoryProposed,
  CategoryApproved,
  CategoryRenamed,
  CategoryRetired,
])
export type CatalogEvent = t.TypeOf<typeof CatalogEvent>
export type CatalogEventType = CatalogEvent['type']
