import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { AttachmentId, PatientId, PatientKeyStore, ReferralId } from '@referrals/core'

/** Where an attachment's ciphertext lives: one blob per (referral, attachment). */
export interface AttachmentLocation {
  readonly referralId: ReferralId
  readonly attachmentId: AttachmentId
}

/**
 * Port: encrypted attachment content, kept outside the event store (the event only records the
 * type, size, SHA-256 and — sealed — the file name). The store never sees plaintext: the routes
 * encrypt with the patient's data key (`keyFor`), and name the key by `kid` so that forgetting the
 * patient (destroying the key) makes every attachment of theirs unreadable (`key` → `null`).
 */
export interface AttachmentStore {
  /** The patient's data key (created on first use) and its id. */
  readonly keyFor: (patientId: PatientId) => Promise<{ readonly kid: string; readonly key: Uint8Array }>
  /** A data key by id; `null` once the patient was forgotten. */
  readonly key: (kid: string) => Promise<Uint8Array | null>
  /**
   * Stores ciphertext written under key `kid`. Nothing is visible to `read` until the whole stream
   * was written; if the stream fails, nothing is kept and the stream's error is rethrown.
   */
  readonly write: (
    at: AttachmentLocation,
    kid: string,
    ciphertext: AsyncIterable<Uint8Array>,
  ) => Promise<void>
  /** The stored ciphertext and the id of its key, or `null` when there is none. */
  readonly read: (
    at: AttachmentLocation,
  ) => Promise<{ readonly kid: string; readonly ciphertext: AsyncIterable<Uint8Array> } | null>
  /** Deletes the blob (an upload whose command was refused). Idempotent. */
  readonly remove: (at: AttachmentLocation) => Promise<void>
}

const keyOps = (keys: PatientKeyStore): Pick<AttachmentStore, 'keyFor' | 'key'> => ({
  keyFor: (patientId) => keys.getOrCreate(patientId),
  key: (kid) => keys.get(kid),
})

/** In process memory: tests and the in-memory runtime. */
export const inMemoryAttachmentStore = (options: { readonly keys: PatientKeyStore }): AttachmentStore => {
  const blobs = new Map<string, { readonly kid: string; readonly bytes: Buffer }>()
  const name = (at: AttachmentLocation) => JSON.stringify([at.referralId, at.attachmentId])
  return {
    ...keyOps(options.keys),
    write: async (at, kid, ciphertext) => {
      const parts: Buffer[] = []
      for await (const part of ciphertext) parts.push(Buffer.from(part))
      blobs.set(name(at), { kid, bytes: Buffer.concat(parts) })
    },
    read: async (at) => {
      const blob = blobs.get(name(at))
      return blob === undefined ? null : { kid: blob.kid, ciphertext: Readable.from([blob.bytes]) }
    },
    remove: async (at) => {
      blobs.delete(name(at))
    },
  }
}

const KID_MAX = 255

/**
 * Files under `dir`: `<hex referralId>/<hex attachmentId>.rfa`, holding `kid length (u8) ‖ kid ‖
 * ciphertext`. Ids are hex-encoded so no id can name a path outside `dir`. A blob is written to a
 * temporary file, flushed to disk, then renamed into place, so a crash leaves either the whole
 * blob or none. Files are created with mode 0600.
 */
export const fileAttachmentStore = (options: {
  readonly dir: string
  readonly keys: PatientKeyStore
}): AttachmentStore => {
  const hex = (id: string) => Buffer.from(id, 'utf8').toString('hex')
  const folder = (at: AttachmentLocation) => join(options.dir, hex(at.referralId))
  const file = (at: AttachmentLocation) => join(folder(at), `${hex(at.attachmentId)}.rfa`)
  return {
    ...keyOps(options.keys),
    write: async (at, kid, ciphertext) => {
      const kidBytes = Buffer.from(kid, 'utf8')
      if (kidBytes.length === 0 || kidBytes.length > KID_MAX)
        throw new RangeError('key id length out of range')
      await mkdir(folder(at), { recursive: true, mode: 0o700 })
      const temporary = `${file(at)}.${randomUUID()}.tmp`
      async function* withHeader(): AsyncGenerator<Uint8Array> {
        yield Buffer.concat([Buffer.from([kidBytes.length]), kidBytes])
        yield* ciphertext
      }
      try {
        await pipeline(
          Readable.from(withHeader()),
          createWriteStream(temporary, { flags: 'wx', mode: 0o600 }),
        )
        const handle = await open(temporary, 'r')
        try {
          await handle.sync()
        } finally {
          await handle.close()
        }
        await rename(temporary, file(at))
      } catch (error) {
        await rm(temporary, { force: true })
        throw error
      }
    },
    read: async (at) => {
      let handle: Awaited<ReturnType<typeof open>>
      try {
        handle = await open(file(at), 'r')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw error
      }
      try {
        const length = Buffer.alloc(1)
        await handle.read(length, 0, 1, 0)
        const kid = Buffer.alloc(length[0] ?? 0)
        const { bytesRead } = await handle.read(kid, 0, kid.length, 1)
        if (kid.length === 0 || bytesRead !== kid.length) throw new Error('attachment file header is invalid')
        return {
          kid: kid.toString('utf8'),
          ciphertext: handle.createReadStream({ start: 1 + kid.length }),
        }
      } catch (error) {
        await handle.close()
        throw error
      }
    },
    remove: async (at) => {
      await rm(file(at), { force: true })
    },
  }
}
