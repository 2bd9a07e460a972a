import { createHash, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AttachmentIntegrityError, decryptAttachment, encryptAttachment } from './attachments.js'

const key = randomBytes(32)
const associatedData = JSON.stringify(['referral-r_1', 'att-1'])
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

const collect = async (source: AsyncIterable<Uint8Array>): Promise<Buffer> => {
  const parts: Buffer[] = []
  for await (const part of source) parts.push(Buffer.from(part))
  return Buffer.concat(parts)
}

/** Splits bytes into pieces of the given sizes (cycled), as a network stream would deliver them. */
function* pieces(bytes: Buffer, sizes: readonly number[]): Generator<Buffer> {
  let offset = 0
  let i = 0
  while (offset < bytes.length) {
    const size = Math.max(1, sizes[i++ % sizes.length] ?? 1)
    yield bytes.subarray(offset, offset + size)
    offset += size
  }
}

const encrypt = async (plaintext: Buffer, chunkSize: number, sizes: readonly number[] = [4096]) => {
  const encrypted = encryptAttachment(pieces(plaintext, sizes), { key, associatedData, chunkSize })
  const sealed = await collect(encrypted)
  return { sealed, summary: encrypted.summary() }
}

const decrypt = (
  sealed: Buffer,
  expectedSha256: string,
  options: { key?: Buffer; associatedData?: string } = {},
) =>
  collect(
    decryptAttachment(pieces(sealed, [1000]), {
      key: options.key ?? key,
      associatedData: options.associatedData ?? associatedData,
      expectedSha256,
    }),
  )

const failure = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => null,
    (e: unknown) => e,
  )

describe('attachment encryption', () => {
  it('round-trips any content, whatever the chunk size and the way the input is split', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 5000 }),
        fc.integer({ min: 1, max: 700 }),
        fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 5 }),
        async (bytes, chunkSize, sizes) => {
          const plaintext = Buffer.from(bytes)
          const { sealed, summary } = await encrypt(plaintext, chunkSize, sizes)
          expect(summary).toEqual({
            sha256: sha256(plaintext),
            plaintextBytes: plaintext.length,
            encryptedBytes: sealed.length,
          })
          expect((await decrypt(sealed, sha256(plaintext))).equals(plaintext)).toBe(true)
        },
      ),
      { numRuns: 150 },
    )
  })

  it('handles empty content and content that is an exact number of chunks', async () => {
    for (const length of [0, 64, 128]) {
      const plaintext = randomBytes(length)
      const { sealed } = await encrypt(plaintext, 64)
      expect((await decrypt(sealed, sha256(plaintext))).equals(plaintext)).toBe(true)
    }
  })

  it('does not contain the plaintext and differs on every encryption', async () => {
    const plaintext = Buffer.from('Jane Canary, referral letter. '.repeat(50))
    const a = await encrypt(plaintext, 256)
    const b = await encrypt(plaintext, 256)
    expect(a.sealed.includes(Buffer.from('Canary'))).toBe(false)
    expect(a.sealed.equals(b.sealed)).toBe(false)
  })

  it('rejects any altered byte', async () => {
    const plaintext = randomBytes(300)
    const { sealed } = await encrypt(plaintext, 100)
    for (let i = 0; i < sealed.length; i += 7) {
      const altered = Buffer.from(sealed)
      altered[i] = (altered[i] as number) ^ 0x10
      expect(await failure(decrypt(altered, sha256(plaintext)))).toBeInstanceOf(AttachmentIntegrityError)
    }
  })

  it('rejects truncation at a chunk boundary, dropped or swapped chunks', async () => {
    const plaintext = randomBytes(300)
    const { sealed } = await encrypt(plaintext, 100)
    const header = sealed.subarray(0, 40)
    const frames = [0, 1, 2].map((i) => sealed.subarray(40 + i * 116, 40 + (i + 1) * 116))
    const variants = [
      Buffer.concat([header, frames[0] as Buffer, frames[1] as Buffer]),
      Buffer.concat([header, frames[0] as Buffer, frames[2] as Buffer]),
      Buffer.concat([header, frames[1] as Buffer, frames[0] as Buffer, frames[2] as Buffer]),
      header,
      sealed.subarray(0, 20),
    ]
    for (const variant of variants) {
      expect(await failure(decrypt(variant, sha256(plaintext)))).toBeInstanceOf(AttachmentIntegrityError)
    }
  })

  it('rejects the wrong key or another attachment context', async () => {
    const plaintext = randomBytes(50)
    const { sealed } = await encrypt(plaintext, 64)
    expect(await failure(decrypt(sealed, sha256(plaintext), { key: randomBytes(32) }))).toBeInstanceOf(
      AttachmentIntegrityError,
    )
    expect(
      await failure(
        decrypt(sealed, sha256(plaintext), { associatedData: JSON.stringify(['referral-r_1', 'att-2']) }),
      ),
    ).toBeInstanceOf(AttachmentIntegrityError)
  })

  it('rejects content whose SHA-256 differs from the recorded one, before releasing the last chunk', async () => {
    const plaintext = Buffer.from('the recorded hash belongs to other content')
    const { sealed } = await encrypt(plaintext, 1024)
    const released: Buffer[] = []
    const error = await failure(
      (async () => {
        for await (const part of decryptAttachment([sealed], {
          key,
          associatedData,
          expectedSha256: sha256(Buffer.from('other')),
        }))
          released.push(part)
      })(),
    )
    expect(error).toBeInstanceOf(AttachmentIntegrityError)
    expect((error as Error).message).toMatch(/hash does not match/)
    expect(released).toEqual([])
  })

  it('closes its source when the reader stops early', async () => {
    const plaintext = randomBytes(1000)
    const { sealed } = await encrypt(plaintext, 100)
    let closed = false
    async function* source() {
      try {
        yield* pieces(sealed, [50])
      } finally {
        closed = true
      }
    }
    for await (const _ of decryptAttachment(source(), {
      key,
      associatedData,
      expectedSha256: sha256(plaintext),
    }))
      break
    expect(closed).toBe(true)
  })
})
