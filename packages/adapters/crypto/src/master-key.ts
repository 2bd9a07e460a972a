import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import * as E from 'fp-ts/lib/Either.js'

const KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * The key that wraps every patient data key. Held in a private field: printing, logging or
 * JSON-serialising a `MasterKey` shows `[redacted]`, never key material.
 */
export class MasterKey {
  readonly #bytes: Uint8Array
  private constructor(bytes: Uint8Array) {
    this.#bytes = Uint8Array.from(bytes)
  }
  /** @internal */
  static fromBytes(bytes: Uint8Array): MasterKey {
    if (bytes.length !== KEY_BYTES) throw new RangeError(`a master key has exactly ${KEY_BYTES} bytes`)
    return new MasterKey(bytes)
  }
  /** A fresh random master key (for tests and for `referrals keys generate`-style tooling). */
  static generate(): MasterKey {
    return new MasterKey(randomBytes(KEY_BYTES))
  }
  /** The key as base64, for writing into a secret store; never log it. */
  exportBase64(): string {
    return Buffer.from(this.#bytes).toString('base64')
  }
  /**
   * A short public name for this key (16 hex digits of an HMAC under the key): stored beside each
   * wrapped data key so a store knows which master key wrapped it. Reveals nothing about the key.
   */
  fingerprint(): string {
    return createHmac('sha256', this.#bytes).update('referrals-master-key-id-v1').digest('hex').slice(0, 16)
  }
  /** @internal */
  bytes(): Uint8Array {
    return this.#bytes
  }
  toString(): string {
    return 'MasterKey([redacted])'
  }
  toJSON(): string {
    return '[redacted]'
  }
  [inspect.custom](): string {
    return 'MasterKey([redacted])'
  }
}

export interface MasterKeyError {
  readonly _tag: 'InvalidMasterKey'
  readonly message: string
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
const BASE64URL = /^[A-Za-z0-9_-]*$/

/**
 * Decodes a 32-byte secret from configuration: base64 or base64url (padding optional, surrounding
 * whitespace ignored). Errors say what is wrong, never what was given.
 */
const parseSecret = (text: string | undefined, what: string): E.Either<string, Buffer> => {
  const invalid = (why: string): E.Either<string, Buffer> =>
    E.left(
      `invalid ${what}: ${why}; expected base64 of ${KEY_BYTES} random bytes (e.g. \`openssl rand -base64 32\`)`,
    )
  if (text === undefined || text.trim() === '') return invalid('it is missing or empty')
  const trimmed = text.trim()
  const isBase64 = BASE64.test(trimmed) && (trimmed.length % 4 === 0 || !trimmed.includes('='))
  if (!isBase64 && !BASE64URL.test(trimmed)) return invalid('it contains characters outside base64')
  const bytes = Buffer.from(trimmed, isBase64 ? 'base64' : 'base64url')
  if (bytes.length !== KEY_BYTES) return invalid(`it decodes to ${bytes.length} bytes`)
  return E.right(bytes)
}

/** Parses the master key (e.g. `REFERRALS_MASTER_KEY`): base64 or base64url of exactly 32 bytes. */
export const parseMasterKey = (text: string | undefined): E.Either<MasterKeyError, MasterKey> => {
  const bytes = parseSecret(text, 'master key')
  if (E.isLeft(bytes)) return E.left({ _tag: 'InvalidMasterKey', message: bytes.left })
  const key = MasterKey.fromBytes(bytes.right)
  bytes.right.fill(0)
  return E.right(key)
}

export interface BlindIndexKeyError {
  readonly _tag: 'InvalidBlindIndexKey'
  readonly message: string
}

/**
 * Parses the blind index key (a separate secret from the master key), same format: base64 or
 * base64url of exactly 32 bytes. Pass the result to `createHmacBlindIndex({ key })`.
 */
export const parseBlindIndexKey = (text: string | undefined): E.Either<BlindIndexKeyError, Uint8Array> => {
  const bytes = parseSecret(text, 'blind index key')
  return E.isLeft(bytes)
    ? E.left({ _tag: 'InvalidBlindIndexKey', message: bytes.left })
    : E.right(bytes.right)
}

/** Thrown when a wrapped data key does not open: the wrong master key, or a tampered key record. */
export class KeyUnwrapError extends Error {
  override readonly name = 'KeyUnwrapError'
  constructor(kid: string) {
    super(`data key ${kid} could not be unwrapped: wrong master key or altered key record`)
  }
}

/** Associated data binding a wrapped key to its id and patient, so key rows cannot be swapped. */
const wrapAad = (kid: string, patientId: string): Buffer =>
  Buffer.from(JSON.stringify(['referrals-data-key', 1, kid, patientId]), 'utf8')

/** AES-256-GCM key wrap: `iv (12) ‖ wrapped key (32) ‖ tag (16)`. */
export const wrapDataKey = (
  master: MasterKey,
  kid: string,
  patientId: string,
  dataKey: Uint8Array,
): Buffer => {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', master.bytes(), iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(wrapAad(kid, patientId))
  const ct = Buffer.concat([cipher.update(dataKey), cipher.final()])
  return Buffer.concat([iv, ct, cipher.getAuthTag()])
}

export const unwrapDataKey = (
  master: MasterKey,
  kid: string,
  patientId: string,
  wrapped: Uint8Array,
): Buffer => {
  if (wrapped.length !== IV_BYTES + KEY_BYTES + TAG_BYTES) throw new KeyUnwrapError(kid)
  const buffer = Buffer.from(wrapped)
  try {
    const decipher = createDecipheriv('aes-256-gcm', master.bytes(), buffer.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    })
    decipher.setAAD(wrapAad(kid, patientId))
    decipher.setAuthTag(buffer.subarray(IV_BYTES + KEY_BYTES))
    return Buffer.concat([decipher.update(buffer.subarray(IV_BYTES, IV_BYTES + KEY_BYTES)), decipher.final()])
  } catch {
    throw new KeyUnwrapError(kid)
  }
}

/** A new random data key and a key id that says nothing about the patient. */
export const newDataKey = (): { readonly kid: string; readonly key: Buffer } => ({
  kid: `k_${randomBytes(16).toString('base64url')}`,
  key: randomBytes(KEY_BYTES),
})
