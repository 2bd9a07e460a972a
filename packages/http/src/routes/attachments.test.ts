import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AttachmentId, PatientId, ReferralId } from '@referrals/core'
import { encryptAttachment } from '@referrals/crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { type AttachmentStore, fileAttachmentStore, inMemoryAttachmentStore } from './attachment-store.js'
import { buildRoutesTestApp, type RoutesTestApp, type RoutesTestOptions } from './testing-routes.js'

const BOUNDARY = '----referrals-test-boundary-7f3a'

interface Part {
  readonly name: string
  readonly filename?: string
  readonly contentType?: string
  readonly content: Buffer
}

const multipart = (parts: readonly Part[]) => {
  const chunks: Buffer[] = []
  for (const part of parts) {
    const disposition =
      part.filename === undefined
        ? `form-data; name="${part.name}"`
        : `form-data; name="${part.name}"; filename="${part.filename}"`
    chunks.push(
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n${
          part.contentType === undefined ? '' : `Content-Type: ${part.contentType}\r\n`
        }\r\n`,
      ),
      part.content,
      Buffer.from('\r\n'),
    )
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`))
  return {
    payload: Buffer.concat(chunks),
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
  }
}

/** A small "PDF": the real signature, a marker to look for in ciphertext, and random bytes. */
const MARKER = 'plaintext-marker-attachment-4471'
const pdf = (extra = 3000) => Buffer.concat([Buffer.from(`%PDF-1.7\n${MARKER}\n`), randomBytes(extra)])
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe('attachments (upload and download through the engine)', () => {
  let current: RoutesTestApp | undefined
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    await current?.app.close()
    current = undefined
    for (const cleanup of cleanups.splice(0)) await cleanup()
  })

  const setup = async (options: RoutesTestOptions = {}) => {
    current = await buildRoutesTestApp(options)
    await current.ok('gp', 'POST', '/referrals', current.referral('r-1'))
    return current
  }
  const withFiles = async (options: RoutesTestOptions = {}) => {
    const dir = await mkdtemp(join(tmpdir(), 'referrals-attachments-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    let store: AttachmentStore | undefined
    const t = await setup({
      ...options,
      attachmentStore: (keys) => {
        store = fileAttachmentStore({ dir, keys })
        return store
      },
    })
    const files = async (): Promise<string[]> => {
      const out: string[] = []
      for (const sub of await readdir(dir))
        for (const f of await readdir(join(dir, sub))) out.push(join(dir, sub, f))
      return out
    }
    return { ...t, dir, files, fileStore: store as AttachmentStore }
  }
  const upload = (
    t: RoutesTestApp,
    who: Parameters<RoutesTestApp['call']>[0],
    parts: readonly Part[],
    url = '/referrals/r-1/attachments',
  ) => {
    const body = multipart(parts)
    return t.call(who, 'POST', url, body.payload, body.headers)
  }
  const filePart = (content: Buffer, contentType = 'application/pdf', filename = 'knee-scan.pdf'): Part => ({
    name: 'file',
    filename,
    contentType,
    content,
  })

  it('stores an upload encrypted, records AddAttachment with size and hash, and returns the same bytes to both sides', async () => {
    const t = await withFiles()
    const content = pdf(200_000)
    const res = await upload(t, 'gp', [filePart(content)])
    expect(res.statusCode).toBe(201)
    const body = res.json()
    expect(body).toMatchObject({
      contentType: 'application/pdf',
      sizeBytes: content.length,
      sha256: sha256(content),
      fileName: 'knee-scan.pdf',
    })
    expect(res.headers.location).toBe(`/referrals/r-1/attachments/${body.attachmentId}`)
    const added = t.store.snapshot().filter((e) => e.type === 'AttachmentAdded')
    expect(added).toHaveLength(1)
    expect(added[0]?.data).toMatchObject({
      attachmentId: body.attachmentId,
      sizeBytes: content.length,
      sha256: sha256(content),
    })

    const [file] = await t.files()
    expect(file).toBeDefined()
    const onDisk = await readFile(file as string)
    expect(onDisk.includes(Buffer.from(MARKER))).toBe(false)
    expect((await stat(file as string)).mode & 0o777).toBe(0o600)

    for (const who of ['gp', 'spec'] as const) {
      const down = await t.call(who, 'GET', `/referrals/r-1/attachments/${body.attachmentId}`)
      expect(down.statusCode).toBe(200)
      expect(down.headers['content-type']).toBe('application/pdf')
      expect(down.headers['content-disposition']).toContain('attachment; filename="knee-scan.pdf"')
      expect(down.rawPayload.equals(content)).toBe(true)
    }
    const detail = await t.ok('spec', 'GET', '/referrals/r-1')
    expect(detail.json().attachments).toEqual([body])
  })

  it('records a PhiAccessed audit event for each download, granted or denied', async () => {
    const t = await setup()
    const { attachmentId } = (await upload(t, 'gp', [filePart(pdf())])).json()
    const url = `/referrals/r-1/attachments/${attachmentId}`
    const before = t.store.snapshot().filter((e) => e.type === 'PhiAccessed').length
    await t.call('spec', 'GET', url, undefined, { 'x-purpose-of-use': 'treatment' })
    expect((await t.call('stranger', 'GET', url)).statusCode).toBe(404)
    const audits = t.store
      .snapshot()
      .filter((e) => e.type === 'PhiAccessed')
      .slice(before)
    expect(audits.map((e) => e.data)).toMatchObject([
      {
        userId: 'dr-spec',
        practiceId: 'spec-a',
        referralId: 'r-1',
        patientId: 'clinic:pat-r-1',
        outcome: 'granted',
        resource: '/referrals/:referralId/attachments/:attachmentId',
      },
      { userId: 'stranger', outcome: 'denied' },
    ])
  })

  it('refuses a file over the limit with 413, an unaccepted type or mismatching content with 415, and keeps nothing', async () => {
    const small = await withFiles({
      attachmentLimits: {
        attachmentLimitBytes: 1000,
        attachmentContentTypes: ['application/pdf', 'image/png'],
      },
    })
    const before = small.domainEvents().length

    const big = await upload(small, 'gp', [filePart(pdf(5000))])
    expect(big.statusCode).toBe(413)
    expect(big.headers['content-type']).toContain('application/problem+json')
    const text = await upload(small, 'gp', [filePart(Buffer.from('hello'), 'text/plain', 'a.txt')])
    expect(text.statusCode).toBe(415)
    const disguised = await upload(small, 'gp', [filePart(pdf(100), 'image/png', 'x.png')])
    expect(disguised.statusCode).toBe(415)
    const tooShort = await upload(small, 'gp', [filePart(Buffer.from('%P'), 'application/pdf')])
    expect(tooShort.statusCode).toBe(415)
    const empty = await upload(small, 'gp', [filePart(Buffer.alloc(0))])
    expect(empty.statusCode).toBe(400)

    expect(small.domainEvents()).toHaveLength(before)
    expect(await small.files()).toEqual([])
    const accepted = await upload(small, 'gp', [filePart(pdf(100))])
    expect(accepted.statusCode).toBe(201)
    expect(await small.files()).toHaveLength(1)
  })

  it('stores nothing when the caller may not add to the referral, and answers 404 to outsiders', async () => {
    const t = await withFiles()
    const before = t.domainEvents().length
    expect((await upload(t, 'spec', [filePart(pdf())])).statusCode).toBe(403)
    expect((await upload(t, 'stranger', [filePart(pdf())])).statusCode).toBe(404)
    expect((await upload(t, 'other', [filePart(pdf())])).statusCode).toBe(404)
    expect((await upload(t, 'anonymous', [filePart(pdf())])).statusCode).toBe(401)
    expect((await upload(t, 'gp', [filePart(pdf())], '/referrals/nope/attachments')).statusCode).toBe(404)
    await t.ok('gp', 'POST', '/referrals/r-1/cancel', { reasonCode: 'patient_request' })
    const cancelled = await upload(t, 'gp', [filePart(pdf())])
    expect(cancelled.statusCode).toBe(422)
    expect(t.domainEvents()).toHaveLength(before + 1)
    expect(await t.files()).toEqual([])
  })

  it('answers malformed or non-multipart uploads with 4xx, never 5xx', async () => {
    const t = await setup()
    const json = await t.call('gp', 'POST', '/referrals/r-1/attachments', { file: 'x' })
    expect(json.statusCode).toBe(415)
    const noBoundary = await t.call('gp', 'POST', '/referrals/r-1/attachments', 'garbage', {
      'content-type': 'multipart/form-data',
    })
    expect(noBoundary.statusCode).toBe(400)
    const truncated = await t.call(
      'gp',
      'POST',
      '/referrals/r-1/attachments',
      `--${BOUNDARY}\r\nContent-Disp`,
      {
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
      },
    )
    expect(truncated.statusCode).toBeGreaterThanOrEqual(400)
    expect(truncated.statusCode).toBeLessThan(500)
    const manyFields = await upload(t, 'gp', [
      ...Array.from({ length: 12 }, (_, i) => ({ name: `f${i}`, content: Buffer.from('x') })),
      filePart(pdf()),
    ])
    expect(manyFields.statusCode).toBe(413)
    const fieldOnly = await upload(t, 'gp', [{ name: 'note', content: Buffer.from('x') }])
    expect(fieldOnly.statusCode).toBe(400)
    const twoFiles = await upload(t, 'gp', [filePart(pdf()), filePart(pdf())])
    expect(twoFiles.statusCode).toBe(201)
    expect(t.store.snapshot().filter((e) => e.type === 'AttachmentAdded')).toHaveLength(1)
  })

  it('answers 500 and records nothing when the store fails', async () => {
    const t = await setup({
      attachmentStore: (keys) => ({
        ...inMemoryAttachmentStore({ keys }),
        write: async (_at, _kid, ciphertext) => {
          for await (const _chunk of ciphertext) throw new Error('disk full')
        },
      }),
    })
    const before = t.domainEvents().length
    const res = await upload(t, 'gp', [filePart(pdf())])
    expect(res.statusCode).toBe(500)
    expect(res.json().code).toBe('internal')
    expect(t.domainEvents()).toHaveLength(before)
  })

  it('answers 500 without content when the stored file does not match the recorded hash', async () => {
    const t = await withFiles()
    const { attachmentId } = (await upload(t, 'gp', [filePart(pdf())])).json()
    // Replace the blob by another file encrypted under the same key and binding: every GCM tag
    // checks, only the SHA-256 recorded in the event differs.
    const { kid, key } = await t.keys.getOrCreate('pat-r-1' as PatientId)
    const other = encryptAttachment([pdf()], {
      key,
      associatedData: JSON.stringify(['referrals-attachment', 'r-1', attachmentId]),
    })
    const at = { referralId: 'r-1' as ReferralId, attachmentId: attachmentId as AttachmentId }
    await t.fileStore.write(at, kid, other)
    const res = await t.call('gp', 'GET', `/referrals/r-1/attachments/${attachmentId}`)
    expect(res.statusCode).toBe(500)
    expect(res.headers['content-type']).toContain('application/problem+json')
    expect(res.body).not.toContain(MARKER)

    const [file] = await t.files()
    const bytes = await readFile(file as string)
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] ?? 0) ^ 1
    await writeFile(file as string, bytes)
    const flipped = await t.call('gp', 'GET', `/referrals/r-1/attachments/${attachmentId}`)
    expect(flipped.statusCode).toBe(500)
    expect(flipped.body).not.toContain(MARKER)
  })

  it('denies former recipients and makes the content unreadable once the patient is forgotten', async () => {
    const t = await setup()
    const { attachmentId } = (await upload(t, 'gp', [filePart(pdf())])).json()
    const url = `/referrals/r-1/attachments/${attachmentId}`
    expect((await t.call('gp', 'GET', '/referrals/r-1/attachments/no-such-id')).statusCode).toBe(404)
    await t.ok('spec', 'POST', '/referrals/r-1/decline', { reasonCode: 'capacity' })
    expect((await t.call('spec', 'GET', url)).statusCode).toBe(404)
    expect((await t.call('gp', 'GET', url)).statusCode).toBe(200)
    await t.keys.destroy('clinic:pat-r-1' as PatientId)
    const forgotten = await t.call('gp', 'GET', url)
    expect(forgotten.statusCode).toBe(404)
    expect(forgotten.body).not.toContain(MARKER)
    // No new PHI for a forgotten patient: a new upload is refused and nothing is recorded.
    const again = await upload(t, 'gp', [filePart(pdf())])
    expect(again.statusCode).toBe(422)
    expect(again.json().code).toBe('patient.forgotten')
  })
})
