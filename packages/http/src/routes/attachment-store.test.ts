import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AttachmentId, PatientId, ReferralId } from '@referrals/core'
import { createInMemoryPatientKeyStore, MasterKey } from '@referrals/crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { type AttachmentStore, fileAttachmentStore, inMemoryAttachmentStore } from './attachment-store.js'

const at = (referralId: string, attachmentId: string) => ({
  referralId: referralId as ReferralId,
  attachmentId: attachmentId as AttachmentId,
})
const collect = async (source: AsyncIterable<Uint8Array>) => {
  const parts: Buffer[] = []
  for await (const p of source) parts.push(Buffer.from(p))
  return Buffer.concat(parts)
}
async function* chunks(...parts: Buffer[]): AsyncGenerator<Uint8Array> {
  yield* parts
}
async function* failingAfter(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes
  throw new Error('client went away')
}

describe.each([
  ['file', true],
  ['memory', false],
] as const)('%s attachment store', (_name, onDisk) => {
  const dirs: string[] = []
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
  })
  const make = async (): Promise<{ store: AttachmentStore; files: () => Promise<string[]>; dir: string }> => {
    const keys = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
    const dir = await mkdtemp(join(tmpdir(), 'referrals-store-'))
    dirs.push(dir)
    const files = async () => (await readdir(dir, { recursive: true })).map(String)
    return {
      store: onDisk ? fileAttachmentStore({ dir, keys }) : inMemoryAttachmentStore({ keys }),
      files,
      dir,
    }
  }

  it('reads back what was written, with the key id, and forgets it on remove', async () => {
    const { store } = await make()
    const bytes = Buffer.from('ciphertext bytes '.repeat(5000))
    await store.write(at('r-1', 'a-1'), 'k_0123', chunks(bytes.subarray(0, 100), bytes.subarray(100)))
    const read = await store.read(at('r-1', 'a-1'))
    expect(read?.kid).toBe('k_0123')
    expect((await collect(read?.ciphertext ?? chunks())).equals(bytes)).toBe(true)
    expect(await store.read(at('r-1', 'a-2'))).toBeNull()
    await store.remove(at('r-1', 'a-1'))
    await store.remove(at('r-1', 'a-1'))
    expect(await store.read(at('r-1', 'a-1'))).toBeNull()
  })

  it('keeps nothing when the stream fails, and rethrows its error', async () => {
    const { store, files } = await make()
    await expect(store.write(at('r-1', 'a-1'), 'k_1', failingAfter(Buffer.from('partial')))).rejects.toThrow(
      'client went away',
    )
    expect(await store.read(at('r-1', 'a-1'))).toBeNull()
    if (onDisk) expect((await files()).filter((f) => f.endsWith('.rfa') || f.endsWith('.tmp'))).toEqual([])
  })

  it('gives out the patient key by kid until it is destroyed', async () => {
    const keys = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
    const store = inMemoryAttachmentStore({ keys })
    const { kid, key } = await store.keyFor('pat-1' as PatientId)
    expect(await store.key(kid)).toEqual(key)
    await keys.destroy('pat-1' as PatientId)
    expect(await store.key(kid)).toBeNull()
  })

  if (onDisk) {
    it('never writes outside its directory, whatever the ids', async () => {
      const { store, files } = await make()
      await store.write(at('../../escape', '../x'), 'k_1', chunks(Buffer.from('x')))
      const written = await files()
      expect(written.some((f) => f.endsWith('.rfa'))).toBe(true)
      expect(written.every((f) => !f.includes('..'))).toBe(true)
      expect((await store.read(at('../../escape', '../x')))?.kid).toBe('k_1')
    })
  }
})
