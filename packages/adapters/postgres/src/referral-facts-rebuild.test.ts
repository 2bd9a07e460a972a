import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { occurredAtOf } from './referral-facts-rebuild.js'

// The rebuild takes `occurredAt` from the metadata's JSON text with a search when that cannot
// differ from a parse: it must always give what `JSON.parse(text).occurredAt` gives.
const parsed = (text: string): string | null => {
  const at = (JSON.parse(text) as { occurredAt?: unknown }).occurredAt
  return typeof at === 'string' ? at : null
}

describe('occurredAtOf (the rebuild reads the metadata as text)', () => {
  it('takes the top-level occurredAt of the stored metadata', () => {
    const metadata = {
      actor: { kind: 'user', userId: 'u-1' },
      correlationId: 'c-1',
      commandId: 'cmd-1',
      occurredAt: '2026-03-01T10:00:00.000Z',
      integrity: { prev: 'a', hash: 'b' },
    }
    expect(occurredAtOf(JSON.stringify(metadata))).toBe('2026-03-01T10:00:00.000Z')
  })

  it('gives the parse answer for nested, repeated, escaped or spaced keys', () => {
    const cases = [
      '{"actor":{"occurredAt":"nested"},"occurredAt":"2026-01-01T00:00:00.000Z"}',
      '{"actor":{"note":"\\"occurredAt\\":\\"fake\\""},"occurredAt":"2026-01-02T00:00:00.000Z"}',
      '{"actor":{"note":"x\\"occurredAt"},"occurredAt":"2026-01-03T00:00:00.000Z"}',
      '{ "occurredAt" : "2026-01-04T00:00:00.000Z" }',
      '{"occurredAt":"2026-01-05T00:00:00.000Z","actor":{"occurredAt":"later"}}',
      '{"commandId":"c"}',
      '{"occurredAt":7}',
      '{"actor":{"occurredAt":""}}',
    ]
    for (const text of cases) expect(occurredAtOf(text)).toBe(parsed(text))
  })

  it('equals JSON.parse over random metadata objects', () => {
    const value = fc.oneof(fc.string(), fc.constant('occurredAt'), fc.constant('"occurredAt":"x"'))
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.oneof(fc.string(), fc.constant('occurredAt')),
          fc.oneof(value, fc.dictionary(fc.oneof(fc.string(), fc.constant('occurredAt')), value)),
        ),
        fc.option(fc.string(), { nil: undefined }),
        (rest, at) => {
          const text = JSON.stringify(at === undefined ? rest : { ...rest, occurredAt: at })
          expect(occurredAtOf(text)).toBe(parsed(text))
        },
      ),
      { numRuns: 5_000 },
    )
  })
})
