import { isLeft, isRight } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { Instant, InstantFromRfc3339 } from './time.js'

describe('InstantFromRfc3339', () => {
  it.each([
    ['2026-12-06T12:47:50Z', '2026-12-06T12:47:50.000Z'],
    ['2026-12-06T12:47:50.000Z', '2026-12-06T12:47:50.000Z'],
    ['2026-12-06T13:47:50.1+01:00', '2026-12-06T12:47:50.100Z'],
    ['2026-12-06T07:17:50.123456789-05:30', '2026-12-06T12:47:50.123Z'],
    ['2026-12-06t12:47:50z', '2026-12-06T12:47:50.000Z'],
    ['2026-12-07T00:30:00+01:00', '2026-12-06T23:30:00.000Z'],
    ['2024-02-29T00:00:00-00:00', '2024-02-29T00:00:00.000Z'],
  ])('decodes %s to the instant %s', (input, expected) => {
    const decoded = InstantFromRfc3339.decode(input)
    expect(decoded).toEqual({ _tag: 'Right', right: expected })
    if (isRight(decoded)) expect(Instant.is(decoded.right)).toBe(true)
  })

  it.each([
    '2026-12-06',
    '2026-12-06T12:47Z',
    '2026-12-06T12:47:50',
    '2026-12-06 12:47:50Z',
    '2026-12-06T12:47:50.Z',
    '2026-12-06T12:47:50+0100',
    '2026-02-30T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-12-06T24:00:00Z',
    '2026-12-06T23:59:60Z',
    '2026-12-06T12:47:50+24:00',
    '0000-01-01T00:00:00+01:00',
    ' 2026-12-06T12:47:50Z',
    'yesterday',
    '',
  ])('refuses %j', (input) => {
    expect(isLeft(InstantFromRfc3339.decode(input))).toBe(true)
  })

  it('refuses what is not a string, and encodes an instant as itself', () => {
    expect(isLeft(InstantFromRfc3339.decode(1_765_025_270_000))).toBe(true)
    expect(InstantFromRfc3339.encode('2026-12-06T12:47:50.000Z' as Instant)).toBe('2026-12-06T12:47:50.000Z')
  })

  it('leaves the stored-event Instant strict', () => {
    expect(Instant.is('2026-12-06T12:47:50Z')).toBe(false)
  })
})
