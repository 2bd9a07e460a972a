import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import {
  KeyUnwrapError,
  MasterKey,
  newDataKey,
  parseBlindIndexKey,
  parseMasterKey,
  unwrapDataKey,
  wrapDataKey,
} from './master-key.js'

const keyBytes = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7 + 1))

describe('parseMasterKey', () => {
  it.each([
    ['base64', keyBytes.toString('base64')],
    ['base64url', keyBytes.toString('base64url')],
    ['base64 without padding', keyBytes.toString('base64').replace(/=+$/, '')],
    ['surrounded by whitespace', `  ${keyBytes.toString('base64')}\n`],
  ])('accepts %s of 32 bytes', (_name, text) => {
    const parsed = parseMasterKey(text)
    expect(E.isRight(parsed) && parsed.right.exportBase64()).toBe(keyBytes.toString('base64'))
  })

  it.each([
    ['missing', undefined],
    ['empty', '   '],
    ['16 bytes', randomBytes(16).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['not base64', 'this is not a key, it has spaces and commas!!'],
  ])('rejects a %s key with a clear message that does not echo it', (_name, text) => {
    const parsed = parseMasterKey(text)
    expect(E.isLeft(parsed)).toBe(true)
    if (E.isLeft(parsed)) {
      expect(parsed.left._tag).toBe('InvalidMasterKey')
      expect(parsed.left.message).toMatch(/^invalid master key: .*32 random bytes/)
      if (text !== undefined && text.trim() !== '') expect(parsed.left.message).not.toContain(text.trim())
    }
  })

  it('never shows key material when printed, logged or serialised', () => {
    const key = E.getOrElseW(() => null)(parseMasterKey(keyBytes.toString('base64'))) as MasterKey
    const shown = [String(key), JSON.stringify({ key }), inspect(key), inspect({ nested: key })].join(' ')
    expect(shown).not.toContain(keyBytes.toString('base64'))
    expect(shown).not.toContain(keyBytes.toString('hex'))
    expect(shown).toContain('[redacted]')
  })
})

describe('parseBlindIndexKey', () => {
  it('accepts base64 of 32 bytes and rejects anything else without echoing it', () => {
    const parsed = parseBlindIndexKey(keyBytes.toString('base64url'))
    expect(E.isRight(parsed) && Buffer.from(parsed.right).equals(keyBytes)).toBe(true)
    const short = randomBytes(20).toString('base64')
    const bad = parseBlindIndexKey(short)
    expect(E.isLeft(bad) && bad.left).toMatchObject({ _tag: 'InvalidBlindIndexKey' })
    expect(E.isLeft(bad) && bad.left.message).toMatch(/^invalid blind index key: it decodes to 20 bytes/)
    expect(E.isLeft(bad) && bad.left.message).not.toContain(short)
  })
})

describe('data key wrapping', () => {
  it('unwraps what it wrapped, only with the same master key, kid and patient', () => {
    const master = MasterKey.generate()
    const { kid, key } = newDataKey()
    const wrapped = wrapDataKey(master, kid, 'patient-1', key)
    expect(wrapped.includes(key)).toBe(false)
    expect(unwrapDataKey(master, kid, 'patient-1', wrapped).equals(key)).toBe(true)
    expect(() => unwrapDataKey(MasterKey.generate(), kid, 'patient-1', wrapped)).toThrow(KeyUnwrapError)
    expect(() => unwrapDataKey(master, kid, 'patient-2', wrapped)).toThrow(KeyUnwrapError)
    expect(() => unwrapDataKey(master, `${kid}x`, 'patient-1', wrapped)).toThrow(KeyUnwrapError)
    const flipped = Buffer.from(wrapped)
    flipped[20] = (flipped[20] as number) ^ 1
    expect(() => unwrapDataKey(master, kid, 'patient-1', flipped)).toThrow(KeyUnwrapError)
  })

  it('names a master key by a fingerprint that is stable, distinct per key and not the key', () => {
    const key = MasterKey.generate()
    expect(key.fingerprint()).toMatch(/^[0-9a-f]{16}$/)
    expect(key.fingerprint()).toBe(key.fingerprint())
    expect(MasterKey.generate().fingerprint()).not.toBe(key.fingerprint())
    expect(Buffer.from(key.exportBase64(), 'base64').toString('hex')).not.toContain(key.fingerprint())
  })

  it('gives every data key its own random kid', () => {
    const kids = new Set(Array.from({ length: 1000 }, () => newDataKey().kid))
    expect(kids.size).toBe(1000)
    for (const kid of kids) expect(kid).toMatch(/^k_[A-Za-z0-9_-]{22}$/)
  })
})
