import * as t from 'io-ts'

/**
 * A referral link's public code: 10 to 32 characters of Crockford's base32 (digits and capitals
 * without I, L, O, U), so a code read aloud or typed from paper is not mistaken for another.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const LINK_CODE_PATTERN = /^[0-9A-HJKMNP-TV-Z]{10,32}$/

export const LinkCode = t.brand(
  t.string,
  (s): s is t.Branded<string, { readonly LinkCode: symbol }> => LINK_CODE_PATTERN.test(s),
  'LinkCode',
)
export type LinkCode = t.TypeOf<typeof LinkCode>

/**
 * LinkCodeGenerator port: the only way the engine makes new link codes. Codes are unguessable in
 * production (an adapter draws them from a cryptographic source) because a code opens a public
 * intake page; the core never draws randomness itself.
 */
export interface LinkCodeGenerator {
  readonly next: () => LinkCode
}

/**
 * The code spelled by `bytes` (one character per byte, its low five bits): how an adapter turns
 * random bytes into a code. Throws for fewer than 10 or more than 32 bytes, the code lengths allowed.
 */
export const linkCodeFromBytes = (bytes: Uint8Array): LinkCode => {
  if (bytes.length < 10 || bytes.length > 32) throw new Error('a link code needs 10 to 32 bytes')
  return Array.from(bytes, (b) => ALPHABET[b & 31]).join('') as LinkCode
}

/** Deterministic codes `TEST000001`, `TEST000002`, …; for tests and simulations. */
export const sequentialLinkCodes = (prefix = 'TEST'): LinkCodeGenerator => {
  let n = 0
  return { next: () => `${prefix}${String(++n).padStart(6, '0')}` as LinkCode }
}
