import {
  AttachmentId,
  CategoryId,
  CommandId,
  CorrelationId,
  EventId,
  Instant,
  InstantFromRfc3339,
  InsuranceNetworkId,
  MessageId,
  PatientId,
  PracticeId,
  ReferralId,
  RegionId,
  SpecialtyId,
  UserId,
} from '@referrals/core'
import * as t from 'io-ts'

/**
 * io-ts codec → JSON Schema 2020-12 (the dialect of OpenAPI 3.1), so the codecs that decode HTTP
 * input are also the only description of it. Refinements and brands cannot be introspected, so
 * they become their base schema plus whatever the registry says about them (by codec or name):
 * branded ids get their pattern, `Instant` the `date-time` format, `Int` the `integer` type.
 */
export type JsonSchema = { readonly [key: string]: unknown }

type Mutable = { [key: string]: unknown }

export interface SchemaRegistry {
  /** Extra keywords merged over the base schema of a codec (matched by identity, then by name). */
  readonly register: (codec: t.Any | string, schema: JsonSchema) => SchemaRegistry
  readonly lookup: (codec: t.Any) => JsonSchema | undefined
}

const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'

export const createSchemaRegistry = (): SchemaRegistry => {
  const byCodec = new Map<t.Any, JsonSchema>()
  const byName = new Map<string, JsonSchema>()
  const registry: SchemaRegistry = {
    register: (codec, schema) => {
      if (typeof codec === 'string') byName.set(codec, schema)
      else byCodec.set(codec, schema)
      return registry
    },
    lookup: (codec) => byCodec.get(codec) ?? byName.get(codec.name),
  }
  return registry
}

/** The registry used when none is given: the core's branded ids, `Instant` and `Int`. */
export const defaultSchemaRegistry: SchemaRegistry = (() => {
  const registry = createSchemaRegistry()
  const ids: readonly t.Any[] = [
    AttachmentId,
    CategoryId,
    CommandId,
    CorrelationId,
    EventId,
    InsuranceNetworkId,
    MessageId,
    PatientId,
    PracticeId,
    ReferralId,
    RegionId,
    SpecialtyId,
    UserId,
  ]
  for (const id of ids) registry.register(id, { type: 'string', pattern: ID_PATTERN, maxLength: 128 })
  registry.register(Instant, {
    type: 'string',
    format: 'date-time',
    description: 'UTC instant with millisecond precision, e.g. 2026-01-31T12:00:00.000Z',
  })
  registry.register(InstantFromRfc3339, {
    type: 'string',
    format: 'date-time',
    description:
      'RFC 3339 date-time with an offset or Z and any fraction, e.g. 2026-12-06T12:47:50Z or 2026-12-06T13:47:50.1+01:00; read as the UTC instant it denotes (milliseconds)',
  })
  registry.register(t.Int, { type: 'integer' })
  registry.register('Int', { type: 'integer' })
  registry.register('IntFromQuery', { type: 'integer' })
  return registry
})()

/**
 * Named schemas: a codec given a name with `nameSchema(codec, 'PracticeView')` is described once,
 * under `components.schemas.<name>` of the OpenAPI document, and referenced wherever it is used —
 * so generated clients get real type names. `toJsonSchema` marks such a schema with
 * `x-schema-name` (the documentation replaces each marked schema by a `$ref`) and records its
 * component, in which the named schemas it uses are references in turn.
 */
export const SCHEMA_NAME = 'x-schema-name'
const COMPONENTS = '#/components/schemas/'

const schemaNames = new Map<t.Any, string>()
const namedComponents = new Map<string, { readonly codec: t.Any | undefined; schema: JsonSchema }>()

export const nameSchema = <C extends t.Any>(codec: C, name: string): C => {
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) throw new Error(`schema name ${name} is not an identifier`)
  const known = schemaNames.get(codec)
  if (known !== undefined && known !== name) throw new Error(`codec already named ${known}, not ${name}`)
  const owner = namedComponents.get(name)
  if (owner !== undefined && owner.codec === undefined) throw new Error(`two schemas are named ${name}`)
  schemaNames.set(codec, name)
  return codec
}

/** The name given to `codec` by `nameSchema`, if any. */
export const schemaNameOf = (codec: t.Any): string | undefined => schemaNames.get(codec)

/** A plain JSON Schema (not from a codec) under a component name, e.g. the problem document. */
export const namedJsonSchema = (name: string, schema: JsonSchema): JsonSchema => {
  const owner = namedComponents.get(name)
  if (owner !== undefined && owner.codec !== undefined) throw new Error(`two schemas are named ${name}`)
  namedComponents.set(name, { codec: undefined, schema: withRefs(schema) })
  return { ...schema, [SCHEMA_NAME]: name }
}

/** Every named schema described so far, by name (what `components.schemas` holds). */
export const schemaComponents = (): Readonly<Record<string, JsonSchema>> =>
  Object.fromEntries(
    [...namedComponents].sort(([a], [b]) => a.localeCompare(b)).map(([n, c]) => [n, c.schema]),
  )

/** A copy of `schema` whose marked sub-schemas (not itself) are `$ref`s to their components. */
const withRefs = (schema: JsonSchema): JsonSchema => {
  const replace = (node: unknown, top: boolean): unknown => {
    if (Array.isArray(node)) return node.map((n) => replace(n, false))
    if (node === null || typeof node !== 'object') return node
    const name = (node as Mutable)[SCHEMA_NAME]
    if (!top && typeof name === 'string') return { $ref: `${COMPONENTS}${name}` }
    const out: Mutable = {}
    for (const [k, v] of Object.entries(node)) if (k !== SCHEMA_NAME) out[k] = replace(v, false)
    return out
  }
  return replace(schema, true) as JsonSchema
}

/**
 * Replaces every schema marked with `x-schema-name` in an OpenAPI document by a `$ref` to its
 * component (description kept beside the `$ref`, as OpenAPI 3.1 allows).
 */
export const referenceNamedSchemas = <A>(document: A): A => {
  const replace = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(replace)
    if (node === null || typeof node !== 'object') return node
    const name = (node as Mutable)[SCHEMA_NAME]
    if (typeof name === 'string') return { $ref: `${COMPONENTS}${name}` }
    const out: Mutable = {}
    for (const [k, v] of Object.entries(node)) out[k] = replace(v)
    return out
  }
  return replace(document) as A
}

/** An io-ts type string (`Readonly<{| a: A |}>`) is no description; a plain name may be. */
const readableName = (name: string): string | undefined =>
  /^[A-Za-z][A-Za-z0-9 ]*$/.test(name) ? name : undefined

export class UnsupportedCodecError extends Error {
  constructor(codecName: string) {
    super(`cannot describe codec ${codecName} as JSON Schema`)
    this.name = 'UnsupportedCodecError'
  }
}

const isPlainObjectSchema = (schema: JsonSchema): boolean =>
  schema.type === 'object' &&
  Object.keys(schema).every((k) => k === 'type' || k === 'properties' || k === 'required')

/** A single-value enum, i.e. what a literal codec becomes. */
const literalValueOf = (schema: JsonSchema | undefined): unknown =>
  Array.isArray(schema?.enum) && schema.enum.length === 1 ? schema.enum[0] : undefined

/** Whether a codec accepts `undefined`, which makes an interface property optional. */
const acceptsUndefined = (codec: t.Any): boolean => codec.is(undefined)

export const toJsonSchema = (codec: t.Any, registry: SchemaRegistry = defaultSchemaRegistry): JsonSchema => {
  const active = new Set<t.Any>()

  const convert = (c: t.Any): JsonSchema => {
    const name = schemaNames.get(c)
    if (name === undefined) return convertUnnamed(c)
    const schema = convertUnnamed(c)
    const component = withRefs(schema)
    // Routes are declared per app, so one name may come with a new (equal) codec each time; two
    // different schemas under one name would make the document lie.
    const owner = namedComponents.get(name)
    if (owner !== undefined && JSON.stringify(owner.schema) !== JSON.stringify(component))
      throw new Error(`two different schemas are named ${name}`)
    namedComponents.set(name, { codec: c, schema: component })
    return { ...schema, [SCHEMA_NAME]: name }
  }

  const convertUnnamed = (c: t.Any): JsonSchema => {
    const registered = registry.lookup(c)
    const tagged = c as t.Any & { readonly _tag?: string }
    if (registered !== undefined && tagged._tag !== 'RefinementType') return registered
    if (active.has(c)) return { description: `recursive ${c.name}` }
    active.add(c)
    try {
      return describe(tagged, registered)
    } finally {
      active.delete(c)
    }
  }

  const objectOf = (props: t.Props, optional: boolean): JsonSchema => {
    const properties: Mutable = {}
    const required: string[] = []
    for (const [key, prop] of Object.entries(props)) {
      properties[key] = convert(prop)
      if (!optional && !acceptsUndefined(prop)) required.push(key)
    }
    return required.length > 0 ? { type: 'object', properties, required } : { type: 'object', properties }
  }

  const describe = (
    c: t.Any & { readonly _tag?: string },
    registered: JsonSchema | undefined,
  ): JsonSchema => {
    switch (c._tag) {
      case 'StringType':
        return { type: 'string' }
      case 'NumberType':
        return { type: 'number' }
      case 'BigIntType':
        return { type: 'integer' }
      case 'BooleanType':
        return { type: 'boolean' }
      case 'NullType':
        return { type: 'null' }
      case 'UnknownType':
      case 'AnyType':
        return {}
      case 'NeverType':
        return { not: {} }
      case 'UnknownRecordType':
        return { type: 'object' }
      case 'UnknownArrayType':
      case 'AnyArrayType':
        return { type: 'array' }
      case 'AnyDictionaryType':
      case 'ObjectType':
        return { type: 'object' }
      case 'LiteralType': {
        const value = (c as unknown as t.LiteralC<string | number | boolean>).value
        return { type: typeof value, enum: [value] }
      }
      case 'KeyofType':
        return { type: 'string', enum: Object.keys((c as unknown as t.KeyofC<t.Props>).keys) }
      case 'InterfaceType':
        return objectOf((c as unknown as t.InterfaceType<t.Props>).props, false)
      case 'PartialType':
        return objectOf((c as unknown as t.PartialType<t.Props>).props, true)
      case 'ExactType':
      case 'ReadonlyType':
        return convert((c as unknown as { readonly type: t.Any }).type)
      case 'ArrayType':
      case 'ReadonlyArrayType':
        return { type: 'array', items: convert((c as unknown as { readonly type: t.Any }).type) }
      case 'TupleType': {
        const items = (c as unknown as t.TupleType<[t.Any, ...t.Any[]]>).types.map(convert)
        return { type: 'array', prefixItems: items, minItems: items.length, maxItems: items.length }
      }
      case 'DictionaryType': {
        const dict = c as unknown as t.DictionaryType<t.Any, t.Any>
        const domain = convert(dict.domain)
        const codomain = convert(dict.codomain)
        if (Array.isArray(domain.enum)) {
          // A record over a finite key set requires every key (io-ts "enumerable record").
          const properties: Mutable = {}
          for (const key of domain.enum) properties[String(key)] = codomain
          return {
            type: 'object',
            properties,
            required: domain.enum.map(String),
            additionalProperties: false,
          }
        }
        return domain.type === 'string' && Object.keys(domain).length === 1
          ? { type: 'object', additionalProperties: codomain }
          : { type: 'object', propertyNames: domain, additionalProperties: codomain }
      }
      case 'RefinementType': {
        const base = convert((c as unknown as t.RefinementType<t.Any>).type)
        if (registered !== undefined) return { ...base, ...registered }
        const readable = readableName(c.name)
        if (readable === undefined) return base
        return {
          ...base,
          description: `${base.description === undefined ? '' : `${base.description}; `}${readable}`,
        }
      }
      case 'IntersectionType':
        return intersection((c as unknown as t.IntersectionType<t.Mixed[]>).types.map(convert))
      case 'UnionType':
        return union((c as unknown as t.UnionType<t.Mixed[]>).types)
      case 'RecursiveType':
        return convert((c as unknown as t.RecursiveType<t.Any>).type)
      case 'UndefinedType':
      case 'VoidType':
        return { not: {} }
      default:
        if (registered !== undefined) return registered
        throw new UnsupportedCodecError(c.name)
    }
  }

  /** Intersections of plain objects merge into one object; anything else stays an `allOf`. */
  const intersection = (members: readonly JsonSchema[]): JsonSchema => {
    if (!members.every(isPlainObjectSchema)) return { allOf: members }
    const properties: Mutable = {}
    const required = new Set<string>()
    for (const member of members) {
      Object.assign(properties, member.properties)
      for (const key of (member.required as readonly string[] | undefined) ?? []) required.add(key)
    }
    return required.size > 0
      ? { type: 'object', properties, required: [...required] }
      : { type: 'object', properties }
  }

  const union = (codecs: readonly t.Any[]): JsonSchema => {
    const present = codecs.filter((m) => {
      const tag = (m as { readonly _tag?: string })._tag
      return tag !== 'UndefinedType' && tag !== 'VoidType'
    })
    const members = present.map(convert)
    const nonNull = members.filter((m) => m.type !== 'null')
    const nullable = nonNull.length < members.length
    const only = nonNull[0]
    if (nonNull.length === 1 && only !== undefined) return nullable ? withNull(only) : only

    // A union of literals of one JSON type is an enum.
    const values = nonNull.map(literalValueOf)
    const firstType = nonNull[0]?.type
    if (values.every((v) => v !== undefined) && nonNull.every((m) => m.type === firstType)) {
      const asEnum: JsonSchema = { type: firstType, enum: values }
      return nullable ? withNull(asEnum) : asEnum
    }

    const discriminator = findDiscriminator(nonNull)
    if (discriminator === undefined) return { anyOf: nullable ? [...nonNull, { type: 'null' }] : nonNull }
    const combined: JsonSchema = { oneOf: nonNull, discriminator: { propertyName: discriminator } }
    return nullable ? { anyOf: [combined, { type: 'null' }] } : combined
  }

  return convert(codec)
}

const withNull = (schema: JsonSchema): JsonSchema => {
  // A named schema becomes a `$ref`: nullability must stay outside it.
  if (schema[SCHEMA_NAME] !== undefined) return { anyOf: [schema, { type: 'null' }] }
  if (typeof schema.type === 'string' && schema.enum === undefined)
    return { ...schema, type: [schema.type, 'null'] }
  if (typeof schema.type === 'string' && Array.isArray(schema.enum)) {
    return { ...schema, type: [schema.type, 'null'], enum: [...schema.enum, null] }
  }
  return { anyOf: [schema, { type: 'null' }] }
}

/**
 * A property that every member requires as a distinct string literal: the members can be told
 * apart by it alone, which OpenAPI expresses as a `discriminator`.
 */
const findDiscriminator = (members: readonly JsonSchema[]): string | undefined => {
  if (members.length < 2 || !members.every((m) => m.type === 'object')) return undefined
  const first = members[0]
  const candidates = Object.keys((first?.properties as Mutable | undefined) ?? {})
  return candidates.find((key) => {
    const seen = new Set<unknown>()
    for (const member of members) {
      const required = (member.required as readonly string[] | undefined) ?? []
      const value = literalValueOf((member.properties as Record<string, JsonSchema> | undefined)?.[key])
      if (!required.includes(key) || typeof value !== 'string' || seen.has(value)) return false
      seen.add(value)
    }
    return true
  })
}
