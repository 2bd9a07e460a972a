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
 * The coding systems the catalog maps (documented in the README): SNOMED CT and LOINC, by their
 * canonical FHIR system URIs.
 */
export const CodingSystem = t.keyof(
  { 'http://snomed.info/sct': null, 'http://loinc.org': null },
  'http://snomed.info/sct or http://loinc.org',
)
export type CodingSystem = t.TypeOf<typeof CodingSystem>

/** A code of a `CodingSystem`: a SNOMED CT concept id (6–18 digits) or a LOINC code (`NNNNN-N`). */
export const CODE_PATTERN: Readonly<Record<CodingSystem, RegExp>> = {
  'http://snomed.info/sct': /^[1-9]\d{5,17}$/,
  'http://loinc.org': /^\d{1,5}-\d$/,
}

export const MapCodingPayload = command(
  'MapCoding',
  t.readonly(t.strict({ system: CodingSystem, code: t.string, categoryId: CategoryId })),
)
export const UnmapCodingPayload = command(
  'UnmapCoding',
  t.readonly(t.strict({ system: CodingSystem, code: t.string })),
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
  MapCodingPayload,
  UnmapCodingPayload,
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
/** A (system, code) now means this category (a remap replaces the previous category). */
export const CodingMapped = event('CodingMapped', {
  system: CodingSystem,
  code: t.string,
  categoryId: CategoryId,
})
export const CodingUnmapped = event('CodingUnmapped', { system: CodingSystem, code: t.string })

/** Every catalog event as `{ type, data }`: decodes events read from `catalog-<specialtyId>` streams. */
export const CatalogEvent = t.union([
  SpecialtyDefined,
  CategoryProposed,
  CategoryApproved,
  CategoryRenamed,
  CategoryRetired,
  CodingMapped,
  CodingUnmapped,
])
export type CatalogEvent = t.TypeOf<typeof CatalogEvent>
export type CatalogEventType = CatalogEvent['type']
