import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import {
  type OpenResult,
  type PatientKeyStore,
  type PhiCipher,
  type SealContext,
  SealedPhi,
  SealedPhiAuthenticationError,
} from '@referrals/core'

const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32

export interface AesGcmPhiCipherOptions {
  readonly keys: PatientKeyStore
  /** Source of IVs; defaults to `crypto.randomBytes`. Must return `size` fresh random bytes. */
  readonly rng?: (size: number) => Uint8Array
}

/**
 * Associated data: everything that says where and how a ciphertext belongs. A ciphertext moved to
 * another event or stream, or relabelled with another key id, algorithm or version, fails its tag.
 * JSON of an array, so no choice of id can make two different contexts serialise alike.
 */
export const phiAssociatedData = (ctx: SealContext, sealed: Pick<SealedPhi['sealed'], 'v' | 'alg' | 'kid'>) =>
  Buffer.from(
    JSON.stringify(['referrals-phi', sealed.v, sealed.alg, sealed.kid, ctx.streamId, ctx.eventId]),
    'utf8',
  )

/** Decodes base64url, accepting only the canonical encoding (so no two strings open alike). */
const canonicalBase64Url = (text: string): Buffer | null => {
  const bytes = Buffer.from(text, 'base64url')
  return bytes.toString('base64url') === text ? bytes : null
}

const serialise = (phi: unknown): Buffer => {
  let json: string | undefined
  try {
    json = JSON.stringify(phi)
  } catch {
    json = undefined
  }
  if (json === undefined) throw new TypeError('PHI value cannot be serialised as JSON')
  return Buffer.from(json, 'utf8')
}

const IVS_PER_DRAW = 1024

/**
 * Fresh random 12-byte IVs, drawn from the random source 1,024 at a time (one system call instead
 * of one per seal; IVs are public, so holding the next ones in memory reveals nothing). Every IV
 * the cipher uses comes from here.
 */
export const randomIvSource = (rng: (size: number) => Uint8Array = randomBytes): (() => Buffer) => {
  let pool = Buffer.alloc(0)
  let offset = 0
  return () => {
    if (offset + IV_BYTES > pool.length) {
      const size = IV_BYTES * IVS_PER_DRAW
      const drawn = rng(size)
      if (drawn.length !== size) throw new RangeError('random source returned the wrong number of bytes')
      pool = Buffer.from(drawn)
      offset = 0
    }
    const iv = Buffer.from(pool.subarray(offset, offset + IV_BYTES))
    pool.fill(0, offset, offset + IV_BYTES)
    offset += IV_BYTES
    return iv
  }
}

/**
 * PHI sealed with AES-256-GCM under the patient's data key: a random 12-byte IV per seal, a
 * 16-byte tag, and the stream id, event id, key id, algorithm and format version as associated
 * data. Forgetting a patient destroys the data key; later opens report `forgotten`.
 */
export const createAesGcmPhiCipher = (options: AesGcmPhiCipherOptions): PhiCipher => {
  const nextIv = randomIvSource(options.rng)
  return {
    seal: async (ctx, patientId, phi) => {
      const plaintext = serialise(phi)
      const { kid, key } = await options.keys.getOrCreate(patientId)
      if (key.length !== KEY_BYTES) throw new RangeError('patient data key has the wrong length')
      const iv = nextIv()
      const header = { v: 1, alg: 'A256GCM', kid } as const
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
      cipher.setAAD(phiAssociatedData(ctx, header))
      const ct = Buffer.concat([cipher.update(plaintext), cipher.final()])
      return {
        sealed: {
          ...header,
          iv: iv.toString('base64url'),
          ct: ct.toString('base64url'),
          tag: cipher.getAuthTag().toString('base64url'),
        },
      }
    },
    open: async (ctx, sealed): Promise<OpenResult> => {
      if (!SealedPhi.is(sealed)) throw new SealedPhiAuthenticationError(ctx)
      const { kid } = sealed.sealed
      const iv = canonicalBase64Url(sealed.sealed.iv)
      const tag = canonicalBase64Url(sealed.sealed.tag)
      const ct = canonicalBase64Url(sealed.sealed.ct)
      if (iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || ct === null) {
        throw new SealedPhiAuthenticationError(ctx)
      }
      const key = await options.keys.get(kid)
      if (key === null) return { kind: 'forgotten' }
      let plaintext: Buffer
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
        decipher.setAAD(phiAssociatedData(ctx, sealed.sealed))
        decipher.setAuthTag(tag)
        plaintext = Buffer.concat([decipher.update(ct), decipher.final()])
      } catch {
        throw new SealedPhiAuthenticationError(ctx)
      }
      return { kind: 'plain', phi: JSON.parse(plaintext.toString('utf8')) }
    },
    forgetPatient: (patientId) => options.keys.destroy(patientId),
  }
}
