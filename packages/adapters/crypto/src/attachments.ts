import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'

/**
 * Streaming encryption of attachments (chunked AES-256-GCM, in the manner of the STREAM
 * construction). Each chunk is authenticated before any of its plaintext is released, and the
 * nonce marks the final chunk, so truncation, reordering, or splicing chunks from another
 * attachment all fail. Layout:
 *
 *   header: "RFA1" ‖ chunkSize (u32 BE) ‖ salt (32 bytes)
 *   frames: AES-256-GCM(chunk_i) ‖ tag_i, each chunk `chunkSize` bytes except the last (0..chunkSize)
 *
 * The chunk key is HKDF-SHA256(data key, salt, "referrals-attachment-v1" ‖ 0 ‖ associatedData), a
 * fresh key per attachment, so counter nonces never repeat under one key. The nonce of chunk i is
 * 0x000000 ‖ lastFlag ‖ u64 BE i, and every chunk carries the header as associated data.
 */
const MAGIC = Buffer.from('RFA1', 'ascii')
const SALT_BYTES = 32
const HEADER_BYTES = MAGIC.length + 4 + SALT_BYTES
const TAG_BYTES = 16
const DEFAULT_CHUNK = 64 * 1024
const MAX_CHUNK = 16 * 1024 * 1024

export interface AttachmentCryptoOptions {
  /** The patient's data key (32 bytes), e.g. from `PatientKeyStore.getOrCreate`. */
  readonly key: Uint8Array
  /** Where the attachment belongs, e.g. `JSON.stringify([referralId, attachmentId])`; bound into every chunk. */
  readonly associatedData: string
}

export interface AttachmentSummary {
  /** SHA-256 of the plaintext, hex: store it with the attachment's metadata and pass it on download. */
  readonly sha256: string
  readonly plaintextBytes: number
  readonly encryptedBytes: number
}

/** An attachment failed to decrypt or verify. Never carries content. */
export class AttachmentIntegrityError extends Error {
  override readonly name = 'AttachmentIntegrityError'
}

type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>

/** A FIFO of bytes that hands out exact-length slices without re-copying the whole backlog. */
class ByteQueue {
  private parts: Buffer[] = []
  length = 0
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return
    this.parts.push(Buffer.from(bytes))
    this.length += bytes.length
  }
  take(n: number): Buffer {
    const all = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.length)
    const head = Buffer.from(all.subarray(0, n))
    const rest = all.subarray(n)
    this.parts = rest.length > 0 ? [rest] : []
    this.length = rest.length
    return head
  }
}

const chunkKey = (key: Uint8Array, salt: Uint8Array, associatedData: string): Buffer => {
  if (key.length !== 32) throw new RangeError('an attachment key has exactly 32 bytes')
  const info = Buffer.concat([
    Buffer.from('referrals-attachment-v1\u0000', 'utf8'),
    Buffer.from(associatedData, 'utf8'),
  ])
  return Buffer.from(hkdfSync('sha256', key, salt, info, 32))
}

const nonce = (index: number, last: boolean): Buffer => {
  const n = Buffer.alloc(12)
  n[3] = last ? 1 : 0
  n.writeBigUInt64BE(BigInt(index), 4)
  return n
}

export interface EncryptedAttachment extends AsyncIterable<Buffer> {
  /** Hash and sizes; available once the ciphertext has been read to the end. */
  summary(): AttachmentSummary
}

export const encryptAttachment = (
  source: ByteSource,
  options: AttachmentCryptoOptions & {
    readonly chunkSize?: number
    readonly rng?: (size: number) => Uint8Array
  },
): EncryptedAttachment => {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK) {
    throw new RangeError(`chunk size must be between 1 and ${MAX_CHUNK} bytes`)
  }
  let result: AttachmentSummary | undefined
  async function* run(): AsyncGenerator<Buffer> {
    const salt = (options.rng ?? randomBytes)(SALT_BYTES)
    const header = Buffer.alloc(HEADER_BYTES)
    MAGIC.copy(header, 0)
    header.writeUInt32BE(chunkSize, MAGIC.length)
    Buffer.from(salt).copy(header, MAGIC.length + 4)
    const key = chunkKey(options.key, salt, options.associatedData)
    const hash = createHash('sha256')
    let index = 0
    let plaintextBytes = 0
    let encryptedBytes = header.length
    const seal = (chunk: Buffer, last: boolean): Buffer => {
      hash.update(chunk)
      plaintextBytes += chunk.length
      const cipher = createCipheriv('aes-256-gcm', key, nonce(index++, last), { authTagLength: TAG_BYTES })
      cipher.setAAD(header)
      const frame = Buffer.concat([cipher.update(chunk), cipher.final(), cipher.getAuthTag()])
      encryptedBytes += frame.length
      return frame
    }
    yield header
    const queue = new ByteQueue()
    for await (const piece of source) {
      queue.push(piece)
      while (queue.length > chunkSize) yield seal(queue.take(chunkSize), false)
    }
    yield seal(queue.take(queue.length), true)
    result = { sha256: hash.digest('hex'), plaintextBytes, encryptedBytes }
  }
  const generator = run()
  return {
    [Symbol.asyncIterator]: () => generator,
    summary: () => {
      if (result === undefined) throw new Error('the attachment has not been read to the end yet')
      return result
    },
  }
}

/**
 * Decrypts an attachment as a stream, releasing each chunk only after its tag checks. The SHA-256
 * of the plaintext is compared with `expectedSha256` before the final chunk is released, so a
 * consumer that reads to the end never sees a complete mismatching file without an error.
 */
export async function* decryptAttachment(
  source: ByteSource,
  options: AttachmentCryptoOptions & { readonly expectedSha256: string },
): AsyncGenerator<Buffer> {
  const queue = new ByteQueue()
  const iterator = (
    Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]()
  ) as AsyncIterator<Uint8Array> | Iterator<Uint8Array>
  let ended = false
  const fill = async (atLeast: number): Promise<void> => {
    while (!ended && queue.length < atLeast) {
      const next = await iterator.next()
      if (next.done) ended = true
      else queue.push(next.value)
    }
  }
  try {
    await fill(HEADER_BYTES)
    if (queue.length < HEADER_BYTES) throw new AttachmentIntegrityError('attachment is truncated (no header)')
    const header = queue.take(HEADER_BYTES)
    if (!header.subarray(0, MAGIC.length).equals(MAGIC))
      throw new AttachmentIntegrityError('not an encrypted attachment')
    const chunkSize = header.readUInt32BE(MAGIC.length)
    if (chunkSize < 1 || chunkSize > MAX_CHUNK)
      throw new AttachmentIntegrityError('attachment header is invalid')
    const key = chunkKey(options.key, header.subarray(MAGIC.length + 4), options.associatedData)
    const frameSize = chunkSize + TAG_BYTES
    const hash = createHash('sha256')
    let index = 0
    const open = (frame: Buffer, last: boolean): Buffer => {
      if (frame.length < TAG_BYTES) throw new AttachmentIntegrityError('attachment is truncated')
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, nonce(index++, last), {
          authTagLength: TAG_BYTES,
        })
        decipher.setAAD(header)
        decipher.setAuthTag(frame.subarray(frame.length - TAG_BYTES))
        return Buffer.concat([decipher.update(frame.subarray(0, frame.length - TAG_BYTES)), decipher.final()])
      } catch {
        throw new AttachmentIntegrityError(
          'attachment failed authentication: altered, truncated, reordered, or opened with the wrong key or context',
        )
      }
    }
    for (;;) {
      await fill(frameSize + 1)
      if (queue.length > frameSize) {
        const chunk = open(queue.take(frameSize), false)
        hash.update(chunk)
        yield chunk
        continue
      }
      const chunk = open(queue.take(queue.length), true)
      hash.update(chunk)
      if (hash.digest('hex') !== options.expectedSha256.toLowerCase()) {
        throw new AttachmentIntegrityError('attachment content hash does not match the recorded SHA-256')
      }
      if (chunk.length > 0) yield chunk
      return
    }
  } finally {
    await iterator.return?.()
  }
}
