import { createHmac } from 'node:crypto'
import type { BlindIndex, BlindIndexField } from '@referrals/core'

/** Letters that Unicode decomposition leaves whole but people type without the mark. */
const FOLDED_LETTERS: Readonly<Record<string, string>> = {
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
  ø: 'o',
  ł: 'l',
  đ: 'd',
  ð: 'd',
  þ: 'th',
  ı: 'i',
}

/**
 * Names: NFKD, combining marks stripped, lower-cased, a few whole letters folded (ß → ss, ø → o),
 * apostrophes dropped (O'Brien = OBrien), any other punctuation or whitespace run → one space,
 * trimmed. Health numbers: NFKD (so full-width digits count), digits only.
 */
export const normaliseForBlindIndex = (field: BlindIndexField, value: string): string => {
  const decomposed = value.normalize('NFKD')
  if (field === 'health_number') return decomposed.replace(/[^0-9]/g, '')
  return decomposed
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[ßæœøłđðþı]/g, (c) => FOLDED_LETTERS[c] ?? c)
    .replace(/['’‘`´]/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim()
}

export interface HmacBlindIndex extends BlindIndex {
  /**
   * One token per distinct word of a name (for "search by surname"); sorted, so they reveal no
   * word order. Every word token is a token of the single-word name.
   */
  wordTokens(value: string): readonly string[]
}

const MIN_KEY_BYTES = 32
const TOKEN_BYTES = 16

/**
 * Keyed blind index: `base64url(HMAC-SHA256(key, field ‖ 0x00 ‖ normalised value)[0..16])`.
 * The field is part of the input, so a name and a health number with equal text differ.
 * 128-bit tokens keep accidental collisions out of reach while halving index size.
 *
 * Leakage: equal (normalised) values give equal tokens, so anyone with the database sees which
 * patients share a name or health number, and their frequency, but not the value; guessing needs
 * the key. Word tokens widen that to shared name words. Prefix tokens are deliberately not
 * offered: they would reveal shared prefixes of every name, a much finer frequency signal.
 */
export const createHmacBlindIndex = (options: { readonly key: Uint8Array }): HmacBlindIndex => {
  if (options.key.length < MIN_KEY_BYTES) {
    throw new RangeError(`a blind index key needs at least ${MIN_KEY_BYTES} bytes`)
  }
  const key = Buffer.from(options.key)
  const mac = (field: BlindIndexField, normalised: string): string =>
    createHmac('sha256', key)
      .update(`${field}\u0000${normalised}`, 'utf8')
      .digest()
      .subarray(0, TOKEN_BYTES)
      .toString('base64url')
  return {
    token: (field, value) => mac(field, normaliseForBlindIndex(field, value)),
    wordTokens: (value) => {
      const words = new Set(
        normaliseForBlindIndex('patient_name', value)
          .split(' ')
          .filter((w) => w !== ''),
      )
      return [...words].map((w) => mac('patient_name', w)).sort()
    },
  }
}
