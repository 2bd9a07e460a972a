import { Instant, PracticeId, UserId } from '@referrals/core'
import { Ajv2020 } from 'ajv/dist/2020.js'
import * as t from 'io-ts'
import { describe, expect, it } from 'vitest'
import { createSchemaRegistry, type JsonSchema, toJsonSchema, UnsupportedCodecError } from './io-ts-schema.js'

const ajv = new Ajv2020({ strict: false, allErrors: true })
const agrees = (codec: t.Any, schema: JsonSchema, samples: readonly unknown[]) => {
  const validate = ajv.compile(schema)
  for (const sample of samples) {
    expect({ sample, valid: validate(sample) }).toEqual({ sample, valid: codec.is(sample) })
  }
}

describe('toJsonSchema', () => {
  it('describes scalars and literals', () => {
    expect(toJsonSchema(t.string)).toEqual({ type: 'string' })
    expect(toJsonSchema(t.number)).toEqual({ type: 'number' })
    expect(toJsonSchema(t.boolean)).toEqual({ type: 'boolean' })
    expect(toJsonSchema(t.null)).toEqual({ type: 'null' })
    expect(toJsonSchema(t.unknown)).toEqual({})
    expect(toJsonSchema(t.literal('a'))).toEqual({ type: 'string', enum: ['a'] })
    expect(toJsonSchema(t.literal(3))).toEqual({ type: 'number', enum: [3] })
    expect(toJsonSchema(t.keyof({ routine: null, urgent: null }))).toEqual({
      type: 'string',
      enum: ['routine', 'urgent'],
    })
  })

  it('describes interfaces, partials, exact/strict and readonly wrappers with required keys', () => {
    const codec = t.readonly(
      t.intersection([
        t.strict({ id: UserId, at: Instant, count: t.Int }),
        t.exact(t.partial({ note: t.string })),
        t.type({ maybe: t.union([t.string, t.undefined]) }),
      ]),
    )
    expect(toJsonSchema(codec)).toEqual({
      type: 'object',
      properties: {
        id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$', maxLength: 128 },
        at: {
          type: 'string',
          format: 'date-time',
          description: 'UTC instant with millisecond precision, e.g. 2026-01-31T12:00:00.000Z',
        },
        count: { type: 'integer' },
        note: { type: 'string' },
        maybe: { type: 'string' },
      },
      required: ['id', 'at', 'count'],
    })
  })

  it('describes arrays, readonly arrays, tuples and records', () => {
    expect(toJsonSchema(t.array(t.string))).toEqual({ type: 'array', items: { type: 'string' } })
    expect(toJsonSchema(t.readonlyArray(t.number))).toEqual({ type: 'array', items: { type: 'number' } })
    expect(toJsonSchema(t.tuple([t.string, t.number]))).toEqual({
      type: 'array',
      prefixItems: [{ type: 'string' }, { type: 'number' }],
      minItems: 2,
      maxItems: 2,
    })
    expect(toJsonSchema(t.record(t.string, t.number))).toEqual({
      type: 'object',
      additionalProperties: { type: 'number' },
    })
    expect(toJsonSchema(t.record(t.keyof({ a: null, b: null }), t.boolean))).toEqual({
      type: 'object',
      properties: { a: { type: 'boolean' }, b: { type: 'boolean' } },
      required: ['a', 'b'],
      additionalProperties: false,
    })
  })

  it('turns literal unions into enums and nullable unions into type arrays', () => {
    expect(toJsonSchema(t.union([t.literal('a'), t.literal('b')]))).toEqual({
      type: 'string',
      enum: ['a', 'b'],
    })
    expect(toJsonSchema(t.union([t.string, t.null]))).toEqual({ type: ['string', 'null'] })
    expect(toJsonSchema(t.union([t.keyof({ x: null }), t.null]))).toEqual({
      type: ['string', 'null'],
      enum: ['x', null],
    })
    expect(toJsonSchema(t.union([t.type({ a: t.string }), t.null]))).toEqual({
      type: ['object', 'null'],
      properties: { a: { type: 'string' } },
      required: ['a'],
    })
    expect(toJsonSchema(t.union([t.array(t.string), t.number, t.null]))).toEqual({
      anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'number' }, { type: 'null' }],
    })
    expect(toJsonSchema(t.union([t.string, t.number]))).toEqual({
      anyOf: [{ type: 'string' }, { type: 'number' }],
    })
  })

  it('marks discriminated unions with an OpenAPI discriminator', () => {
    const Target = t.union([
      t.strict({ kind: t.literal('direct'), practiceId: PracticeId }),
      t.strict({ kind: t.literal('pooled') }),
    ])
    expect(toJsonSchema(Target)).toEqual({
      oneOf: [
        {
          type: 'object',
          properties: {
            kind: { type: 'string', enum: ['direct'] },
            practiceId: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$', maxLength: 128 },
          },
          required: ['kind', 'practiceId'],
        },
        { type: 'object', properties: { kind: { type: 'string', enum: ['pooled'] } }, required: ['kind'] },
      ],
      discriminator: { propertyName: 'kind' },
    })
  })

  it('describes unregistered refinements by their base schema and name, registered ones by the registry', () => {
    const Positive = t.refinement(t.number, (n) => n > 0, 'Positive')
    expect(toJsonSchema(Positive)).toEqual({ type: 'number', description: 'Positive' })
    const registry = createSchemaRegistry().register('Positive', { exclusiveMinimum: 0 })
    expect(toJsonSchema(t.type({ n: Positive }), registry)).toEqual({
      type: 'object',
      properties: { n: { type: 'number', exclusiveMinimum: 0 } },
      required: ['n'],
    })
  })

  it('handles recursive codecs without looping', () => {
    interface Node {
      readonly children: readonly Node[]
    }
    const Node: t.Type<Node> = t.recursion('Node', () => t.type({ children: t.readonlyArray(Node) }))
    expect(toJsonSchema(Node)).toEqual({
      type: 'object',
      properties: { children: { type: 'array', items: { description: 'recursive Node' } } },
      required: ['children'],
    })
  })

  it('refuses codecs it cannot describe', () => {
    expect(() => toJsonSchema(t.Function)).toThrow(UnsupportedCodecError)
  })

  it('produces schemas that accept and reject what the codecs accept and reject', () => {
    const Payload = t.intersection([
      t.strict({
        urgency: t.keyof({ routine: null, urgent: null, emergent: null }),
        target: t.union([
          t.strict({ kind: t.literal('direct'), practiceId: PracticeId }),
          t.strict({ kind: t.literal('pooled') }),
        ]),
        count: t.Int,
        tags: t.readonlyArray(t.string),
        dueAt: t.union([Instant, t.null]),
      }),
      t.partial({ note: t.string }),
    ])
    const schema = toJsonSchema(Payload)
    const good = {
      urgency: 'urgent',
      target: { kind: 'direct', practiceId: 'p-1' },
      count: 3,
      tags: ['a'],
      dueAt: null,
    }
    agrees(Payload, schema, [
      good,
      { ...good, note: 'x' },
      { ...good, target: { kind: 'pooled' } },
      { ...good, dueAt: '2026-01-31T12:00:00.000Z' },
      { ...good, urgency: 'soon' },
      { ...good, count: 1.5 },
      { ...good, tags: [1] },
      { ...good, target: { kind: 'direct' } },
      { ...good, target: { kind: 'direct', practiceId: 'has space' } },
      { ...good, note: 4 },
      { urgency: 'urgent' },
      'not an object',
    ])
    // Draft 2020-12 keywords validate as such.
    expect(ajv.validateSchema(schema)).toBe(true)
  })
})
