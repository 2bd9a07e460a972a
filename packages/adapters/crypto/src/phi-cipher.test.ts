import { randomBytes } from 'node:crypto'
import {
  type EventId,
  PatientForgottenError,
  type PatientId,
  type SealContext,
  type SealedPhi,
  SealedPhiAuthenticationError,
  type StreamId,
  unsafeId,
} from '@referrals/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MasterKey } from './master-key.js'
import { createInMemoryPatientKeyStore } from './memory-key-store.js'
import { createAesGcmPhiCipher, randomIvSource } from './phi-cipher.js'

const ctx: SealContext = { streamId: unsafeId<StreamId>('referral-r_1'), eventId: unsafeId<EventId>('ev-1') }
const jane = unsafeId<PatientId>('pat-jane')
const john = unsafeId<PatientId>('pat-john')
const canary = { name: 'Jane Canary', healthNumber: '9876543210', reason: 'canary reason' }

const setup = () => {
  const keys = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
  return { keys, cipher: createAesGcmPhiCipher({ keys }) }
}

const b64 = (bytes: Buffer) => bytes.toString('base64url')
const bytesOf = (text: string) => Buffer.from(text, 'base64url')

/** Every variant of `bytes` with exactly one bit flipped. */
const singleBitFlips = (bytes: Buffer): Buffer[] =>
  Array.from({ length: bytes.length * 8 }, (_, bit) => {
    const copy = Buffer.from(bytes)
    copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7))
    return copy
  })

const expectAuthFailure = async (promise: Promise<unknown>) => {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(SealedPhiAuthenticationError)
  expect(String((error as Error).message)).not.toMatch(/Canary|9876543210|canary reason/)
}

describe('AES-256-GCM PHI cipher', () => {
  it('round-trips any JSON value', async () => {
    const { cipher } = setup()
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (phi) => {
        const sealed = await cipher.seal(ctx, jane, phi)
        expect(await cipher.open(ctx, sealed)).toEqual({
          kind: 'plain',
          phi: JSON.parse(JSON.stringify(phi)),
        })
      }),
      { numRuns: 300 },
    )
  })

  it('writes the documented envelope: version, algorithm, key id, 12-byte IV, 16-byte tag, no plaintext', async () => {
    const { cipher } = setup()
    const sealed = await cipher.seal(ctx, jane, canary)
    expect(sealed.sealed).toMatchObject({ v: 1, alg: 'A256GCM' })
    expect(bytesOf(sealed.sealed.iv)).toHaveLength(12)
    expect(bytesOf(sealed.sealed.tag)).toHaveLength(16)
    expect(bytesOf(sealed.sealed.ct)).toHaveLength(JSON.stringify(canary).length)
    expect(JSON.stringify(sealed)).not.toMatch(/Canary|9876543210|pat-jane/)
  })

  it('fails on any single flipped bit of the IV, the ciphertext or the tag', async () => {
    const { cipher } = setup()
    const sealed = await cipher.seal(ctx, jane, { n: 'Jane Canary' })
    for (const field of ['iv', 'ct', 'tag'] as const) {
      for (const flipped of singleBitFlips(bytesOf(sealed.sealed[field]))) {
        await expectAuthFailure(cipher.open(ctx, { sealed: { ...sealed.sealed, [field]: b64(flipped) } }))
      }
    }
  })

  it('fails on any single flipped bit of the associated data (stream id, event id)', async () => {
    const { cipher } = setup()
    const sealed = await cipher.seal(ctx, jane, canary)
    const flipChar = (text: string, bit: number) => {
      const i = bit >> 3
      const code = text.charCodeAt(i) ^ (1 << (bit & 7))
      return text.slice(0, i) + String.fromCharCode(code) + text.slice(i + 1)
    }
    for (let bit = 0; bit < ctx.streamId.length * 8; bit++) {
      await expectAuthFailure(
        cipher.open({ ...ctx, streamId: unsafeId(flipChar(ctx.streamId, bit)) }, sealed),
      )
    }
    for (let bit = 0; bit < ctx.eventId.length * 8; bit++) {
      await expectAuthFailure(cipher.open({ ...ctx, eventId: unsafeId(flipChar(ctx.eventId, bit)) }, sealed))
    }
  })

  it('fails when a ciphertext is moved to another event, or relabelled with another patient key', async () => {
    const { cipher } = setup()
    const sealed = await cipher.seal(ctx, jane, canary)
    await expectAuthFailure(cipher.open({ ...ctx, eventId: unsafeId('ev-2') }, sealed))
    await expectAuthFailure(cipher.open({ ...ctx, streamId: unsafeId('referral-r_2') }, sealed))
    const johns = await cipher.seal(ctx, john, canary)
    await expectAuthFailure(cipher.open(ctx, { sealed: { ...sealed.sealed, kid: johns.sealed.kid } }))
  })

  it('fails on malformed or non-canonical envelopes instead of crashing', async () => {
    const { cipher } = setup()
    const sealed = await cipher.seal(ctx, jane, canary)
    const variants: unknown[] = [
      { sealed: { ...sealed.sealed, v: 2 } },
      { sealed: { ...sealed.sealed, alg: 'A128GCM' } },
      { sealed: { ...sealed.sealed, iv: b64(Buffer.alloc(11)) } },
      { sealed: { ...sealed.sealed, tag: b64(bytesOf(sealed.sealed.tag).subarray(0, 12)) } },
      { sealed: { ...sealed.sealed, iv: `${sealed.sealed.iv}=` } },
      {
        sealed: {
          ...sealed.sealed,
          tag: `${sealed.sealed.tag.slice(0, -1)}${sealed.sealed.tag.endsWith('A') ? 'B' : 'A'}`,
        },
      },
      { nope: true },
    ]
    for (const variant of variants) await expectAuthFailure(cipher.open(ctx, variant as SealedPhi))
  })

  it('reads a forgotten patient as forgotten, leaving other patients readable', async () => {
    const { cipher } = setup()
    const janes = await cipher.seal(ctx, jane, canary)
    const johns = await cipher.seal(ctx, john, { name: 'John' })
    await cipher.forgetPatient(jane)
    expect(await cipher.open(ctx, janes)).toEqual({ kind: 'forgotten' })
    expect(await cipher.open(ctx, johns)).toEqual({ kind: 'plain', phi: { name: 'John' } })
    await cipher.forgetPatient(jane)
    expect(await cipher.open(ctx, janes)).toEqual({ kind: 'forgotten' })
    expect((await cipher.seal(ctx, john, { name: 'John' })).sealed.kid).toBe(johns.sealed.kid)
  })

  it('forgetting lasts: sealing anything new for a forgotten patient throws PatientForgottenError, without PHI', async () => {
    const { cipher } = setup()
    await cipher.seal(ctx, jane, canary)
    await cipher.forgetPatient(jane)
    const error = await cipher.seal(ctx, jane, canary).then(
      () => null,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(PatientForgottenError)
    expect(String((error as Error).message)).not.toMatch(/Canary|9876543210|canary reason|pat-jane/)
  })

  it('uses one data key per patient', async () => {
    const { cipher } = setup()
    const a = await cipher.seal(ctx, jane, 1)
    const b = await cipher.seal(ctx, jane, 2)
    const c = await cipher.seal(ctx, john, 1)
    expect(a.sealed.kid).toBe(b.sealed.kid)
    expect(c.sealed.kid).not.toBe(a.sealed.kid)
  })

  it('refuses values JSON cannot hold without putting them in the error', async () => {
    const { cipher } = setup()
    await expect(cipher.seal(ctx, jane, undefined)).rejects.toThrow(/cannot be serialised/)
    await expect(cipher.seal(ctx, jane, { big: 10n, name: 'Jane Canary' })).rejects.toThrow(/^(?!.*Canary)/)
  })

  it('never repeats an IV across 1,000,000 draws of the IV source the cipher uses', () => {
    const nextIv = randomIvSource()
    const ivs = new Set<string>()
    const total = 1_000_000
    let wrongLength = 0
    for (let i = 0; i < total; i++) {
      const iv = nextIv()
      if (iv.length !== 12) wrongLength++
      ivs.add(iv.toString('latin1'))
    }
    expect(wrongLength).toBe(0)
    expect(ivs.size).toBe(total)
  })

  it('never repeats an IV across 20,000 seals of one value under one key', async () => {
    const { cipher } = setup()
    const seals = await Promise.all(Array.from({ length: 20_000 }, () => cipher.seal(ctx, jane, 0)))
    expect(new Set(seals.map((s) => s.sealed.iv)).size).toBe(20_000)
    expect(new Set(seals.map((s) => s.sealed.ct + s.sealed.tag)).size).toBe(20_000)
  })

  it('draws its IVs from the configured random source', async () => {
    let draws = 0
    const keys = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
    const cipher = createAesGcmPhiCipher({
      keys,
      rng: (size) => {
        draws++
        return Buffer.alloc(size, draws)
      },
    })
    const sealed = await cipher.seal(ctx, jane, 1)
    expect(draws).toBe(1)
    expect(bytesOf(sealed.sealed.iv)).toEqual(Buffer.alloc(12, 1))
  })

  it('rejects an IV source that returns the wrong length', async () => {
    const keys = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
    const cipher = createAesGcmPhiCipher({ keys, rng: () => randomBytes(8) })
    await expect(cipher.seal(ctx, jane, 1)).rejects.toThrow(RangeError)
  })
})
