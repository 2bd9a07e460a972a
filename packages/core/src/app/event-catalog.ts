import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { type Upcaster, upcasterChain } from '../envelope/upcast.js'
import type { DomainEvent } from '../shared/decider.js'
import { describeErrors } from '../shared/decode.js'
import { type DomainError, domainError } from '../shared/errors.js'

/**
 * Everything the engine knows about the events of one stream category: the io-ts codec of the
 * `{type, data}` union (the single source of truth), the current schema version per event type
 * (default 1) and the upcasters lifting older stored versions. Stored events are decoded through
 * the catalog on every read; they are never rewritten.
 */
export interface EventCatalog<Ev extends DomainEvent> {
  readonly codec: t.Type<Ev, unknown, unknown>
  readonly schemaVersionOf: (type: string) => number
  readonly encode: (event: Ev) => {
    readonly type: string
    readonly schemaVersion: number
    readonly data: unknown
  }
  readonly decode: (stored: {
    readonly type: string
    readonly schemaVersion: number
    readonly data: unknown
  }) => E.Either<DomainError, Ev>
}

export const defineEventCatalog = <Ev extends DomainEvent>(spec: {
  readonly codec: t.Type<Ev, unknown, unknown>
  readonly schemaVersions?: Readonly<Record<string, number>>
  readonly upcasters?: readonly Upcaster[]
}): EventCatalog<Ev> => {
  const upcast = upcasterChain(spec.upcasters ?? [])
  const schemaVersionOf = (type: string) => spec.schemaVersions?.[type] ?? 1
  return {
    codec: spec.codec,
    schemaVersionOf,
    encode: (event) => {
      const encoded = spec.codec.encode(event) as { readonly data: unknown }
      return { type: event.type, schemaVersion: schemaVersionOf(event.type), data: encoded.data }
    },
    decode: (stored) => {
      const current = upcast(stored)
      if (current.schemaVersion !== schemaVersionOf(current.type)) {
        return E.left(
          domainError(
            'event.unknown_schema_version',
            `no upcaster from ${current.type} schema version ${current.schemaVersion}`,
          ),
        )
      }
      const decoded = spec.codec.decode({ type: current.type, data: current.data })
      return E.isLeft(decoded)
        ? E.left(
            domainError('event.undecodable', `stored ${current.type} event does not match its codec`, {
              problems: describeErrors(decoded.left)
                .map((p) => `${p.path}: ${p.expected}`)
                .join('; ')
                .slice(0, 500),
            }),
          )
        : decoded
    },
  }
}
