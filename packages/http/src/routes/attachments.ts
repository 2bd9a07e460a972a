import { randomUUID } from 'node:crypto'
import { basename } from 'node:path'
import { Readable } from 'node:stream'
import multipart from '@fastify/multipart'
import {
  type Actor,
  AttachmentId,
  type CommandId,
  type Engine,
  type Instant,
  isMemberOf,
  isPatientForgottenError,
  patientForgottenError,
  type ReferralCommand,
  ReferralCommandPayload,
  ReferralId,
  referralDecider,
  unsafeId,
} from '@referrals/core'
import { AttachmentIntegrityError, decryptAttachment, encryptAttachment } from '@referrals/crypto'
import type { FastifyInstance } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { requireActor } from '../auth.js'
import { nameSchema } from '../openapi/io-ts-schema.js'
import { route } from '../openapi/route.js'
import { httpProblem, ProblemError, toProblemError } from '../problem.js'
import { accessOf, phiReadAuditor } from './access.js'
import type { AttachmentLocation, AttachmentStore } from './attachment-store.js'
import { forbidden, must, notFound, requestContext } from './failures.js'

/** Size and type limits of uploads (from `ATTACHMENT_LIMIT_BYTES` / `ATTACHMENT_CONTENT_TYPES`). */
export interface AttachmentLimits {
  readonly attachmentLimitBytes: number
  readonly attachmentContentTypes: readonly string[]
}

export const DEFAULT_ATTACHMENT_LIMITS: AttachmentLimits = {
  attachmentLimitBytes: 20_971_520,
  attachmentContentTypes: ['application/pdf', 'image/png', 'image/jpeg'],
}

export interface AttachmentRouteDeps {
  readonly engine: Engine
  readonly store: AttachmentStore
  readonly limits: AttachmentLimits
}

export const AttachmentView = nameSchema(
  t.type({
    attachmentId: t.string,
    contentType: t.string,
    sizeBytes: t.number,
    sha256: t.string,
    fileName: t.string,
  }),
  'Attachment',
)

/**
 * Leading bytes of the types we can recognise. A file whose declared type is one of these must
 * start with them (a PDF named `.png` is refused); other configured types are taken as declared.
 */
const SIGNATURES: Readonly<Record<string, Buffer>> = {
  'application/pdf': Buffer.from('%PDF-', 'latin1'),
  'image/png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  'image/jpeg': Buffer.from([0xff, 0xd8, 0xff]),
}

const tooLarge = (limit: number) =>
  new ProblemError(httpProblem('payload_too_large', `Attachments are limited to ${limit} bytes.`))
const unsupportedType = () =>
  new ProblemError(
    httpProblem(
      'unsupported_media_type',
      'This attachment type is not accepted, or the content is not of it.',
    ),
  )
const malformed = () => new ProblemError(httpProblem('bad_request', 'The multipart body is malformed.'))

/** Errors from the multipart parser as problems: limits are 413, anything else malformed input. */
const uploadProblem = (error: unknown, limit: number): ProblemError => {
  if (error instanceof ProblemError) return error
  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown }
  if (code === 'FST_REQ_FILE_TOO_LARGE') return tooLarge(limit)
  if (statusCode === 413)
    return new ProblemError(
      httpProblem('payload_too_large', 'The multipart body has too many parts or fields.'),
    )
  return malformed()
}

/** The media type without parameters, lower-cased (`Image/PNG; x=1` → `image/png`). */
const mediaType = (declared: string): string => (declared.split(';')[0] ?? '').trim().toLowerCase()

/** A file name to record: no directories, no control characters, at most 255 characters. */
const safeFileName = (raw: string): string => {
  const name = basename(raw.replaceAll('\\', '/'))
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
    .replace(/[\u0000-\u001f\u007f]/g, '')
    .trim()
    .slice(0, 255)
    .trim()
  return name.length > 0 ? name : 'attachment'
}

/** RFC 6266 / 5987 `Content-Disposition` with an ASCII fallback name. */
const contentDisposition = (fileName: string): string => {
  const ascii = fileName.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_')
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`
}

const associatedData = (at: AttachmentLocation) =>
  JSON.stringify(['referrals-attachment', at.referralId, at.attachmentId])

const AttachmentParams = t.type({ referralId: ReferralId, attachmentId: AttachmentId })

/**
 * `POST /referrals/:referralId/attachments` (multipart, one file part) and
 * `GET /referrals/:referralId/attachments/:attachmentId`. Uploads are encrypted while they stream
 * in (AES-256-GCM chunks under a key derived from the patient's data key, bound to referral and
 * attachment id) and hashed (SHA-256 of the plaintext); `AddAttachment` is issued once the whole
 * file is stored, and the blob is removed if the engine refuses it. Downloads are decrypted and
 * checked against the recorded hash before the first byte is sent.
 */
export const registerAttachmentRoutes = async (
  parent: FastifyInstance,
  deps: AttachmentRouteDeps,
): Promise<void> => {
  const { engine, store, limits } = deps
  const auditRead = phiReadAuditor(engine)
  const allowed = new Set(limits.attachmentContentTypes.map(mediaType))

  // Encapsulated: only these routes accept multipart bodies.
  await parent.register(async (app) => {
    await app.register(multipart, {
      limits: {
        fileSize: limits.attachmentLimitBytes,
        files: 1,
        fields: 8,
        fieldSize: 1024,
        parts: 9,
        headerPairs: 32,
      },
    })

    /** Refuses, before anything is stored, an upload the decider would refuse. */
    const checkAllowed = (actor: Actor, state: Parameters<typeof accessOf>[1], data: unknown) => {
      const payload = ReferralCommandPayload.decode({ type: 'AddAttachment', data })
      if (E.isLeft(payload)) throw new ProblemError(httpProblem('bad_request', 'The attachment is invalid.'))
      const command = {
        ...payload.right,
        meta: {
          commandId: unsafeId<CommandId>(randomUUID()),
          actor,
          now: new Date().toISOString() as Instant,
          correlationId: unsafeId(randomUUID()),
        },
      } as ReferralCommand
      const decided = referralDecider.decide(command, state)
      if (E.isLeft(decided)) throw toProblemError(decided.left)
    }

    route(app, {
      method: 'POST',
      url: '/referrals/:referralId/attachments',
      operationId: 'uploadAttachment',
      location: true,
      multipartFile: 'The file (PDF, PNG or JPEG unless configured otherwise), with its file name',
      tags: ['referrals'],
      summary: 'Add an attachment (sender): multipart/form-data with one file part',
      description:
        'The file is encrypted and hashed (SHA-256) as it streams in. 413 beyond the size limit, 415 for a type that is not accepted (PDF, PNG and JPEG content is checked against its declared type). Uploads are not replayable: a request with Idempotency-Key is refused with 400 (the file cannot be part of the fingerprint).',
      params: t.type({ referralId: ReferralId }),
      response: AttachmentView,
      handler: async ({ params }, request, reply) => {
        const actor = requireActor(request)
        if (!request.isMultipart())
          throw new ProblemError(httpProblem('unsupported_media_type', 'Send multipart/form-data.'))
        const loaded = must(await engine.referrals.load(params.referralId)())
        const state = loaded.state
        if (!state.exists || accessOf(actor, state) === 'none') throw notFound('Referral')
        if (!isMemberOf(actor, state.senderPracticeId)) throw forbidden()

        let part: Awaited<ReturnType<typeof request.file>>
        try {
          part = await request.file()
        } catch (error) {
          throw uploadProblem(error, limits.attachmentLimitBytes)
        }
        if (part === undefined) throw new ProblemError(httpProblem('bad_request', 'Send one file part.'))
        const file = part.file
        const contentType = mediaType(part.mimetype)
        if (!allowed.has(contentType)) {
          file.resume()
          throw unsupportedType()
        }
        const fileName = safeFileName(part.filename)
        const at = { referralId: params.referralId, attachmentId: unsafeId<AttachmentId>(randomUUID()) }
        const placeholder = { sizeBytes: 1, sha256: '0'.repeat(64) }
        try {
          checkAllowed(actor, state, {
            attachmentId: at.attachmentId,
            contentType,
            ...placeholder,
            phi: { fileName },
          })
        } catch (error) {
          file.resume()
          throw error
        }

        const signature = SIGNATURES[contentType]
        async function* checkedContent(): AsyncGenerator<Uint8Array> {
          let head = Buffer.alloc(0)
          let received = 0
          try {
            for await (const chunk of file as AsyncIterable<Buffer>) {
              received += chunk.length
              if (signature !== undefined && head.length < signature.length) {
                head = Buffer.concat([head, chunk])
                if (!head.subarray(0, signature.length).equals(signature.subarray(0, head.length)))
                  throw unsupportedType()
              }
              yield chunk
            }
          } catch (error) {
            // The request stream failed (malformed or cut short): the client's fault, not ours.
            throw uploadProblem(error, limits.attachmentLimitBytes)
          }
          if (file.truncated) throw tooLarge(limits.attachmentLimitBytes)
          if (received === 0) throw new ProblemError(httpProblem('bad_request', 'The file is empty.'))
          if (signature !== undefined && head.length < signature.length) throw unsupportedType()
        }

        let patientKey: Awaited<ReturnType<typeof store.keyFor>>
        try {
          patientKey = await store.keyFor(state.patientId)
        } catch (error) {
          // A forgotten patient: no new PHI may be recorded (422), and the upload is discarded.
          if (!isPatientForgottenError(error)) throw error
          file.resume()
          throw toProblemError(patientForgottenError())
        }
        const { kid, key } = patientKey
        const encrypted = encryptAttachment(checkedContent(), { key, associatedData: associatedData(at) })
        try {
          await store.write(at, kid, encrypted)
        } catch (error) {
          // Problems come from the upload; anything else is the store failing (a 500).
          file.resume()
          throw error
        }
        const summary = encrypted.summary()
        const data = {
          attachmentId: at.attachmentId,
          contentType,
          sizeBytes: summary.plaintextBytes,
          sha256: summary.sha256,
          phi: { fileName },
        }
        const payload = ReferralCommandPayload.decode({ type: 'AddAttachment', data })
        const result = E.isLeft(payload)
          ? undefined
          : await engine.referrals.execute(params.referralId, payload.right, requestContext(request))()
        if (result === undefined || E.isLeft(result)) {
          await store.remove(at)
          if (result === undefined)
            throw new ProblemError(httpProblem('bad_request', 'The attachment is invalid.'))
          must(result)
        }
        reply.header('location', `/referrals/${at.referralId}/attachments/${at.attachmentId}`)
        return {
          attachmentId: at.attachmentId,
          contentType,
          sizeBytes: data.sizeBytes,
          sha256: data.sha256,
          fileName,
        }
      },
    })

    route(app, {
      method: 'GET',
      url: '/referrals/:referralId/attachments/:attachmentId',
      operationId: 'downloadAttachment',
      produces: 'application/octet-stream',
      purposeOfUse: true,
      tags: ['referrals'],
      summary: 'Download an attachment (sender and current recipient; every read is audited)',
      description:
        'The content is decrypted and its SHA-256 checked before it is sent; a mismatch answers 500 without content. 404 once the patient was forgotten. Send `X-Purpose-Of-Use` to record why it is read.',
      params: AttachmentParams,
      responseDescription: 'The attachment, with its recorded content type',
      handler: async ({ params }, request, reply) => {
        const actor = requireActor(request)
        const loaded = must(await engine.referrals.load(params.referralId)())
        if (accessOf(actor, loaded.state) !== 'phi' || !loaded.state.exists) {
          await auditRead(request, actor, loaded.state, params.referralId, 'denied')
          throw notFound('Attachment')
        }
        const added = loaded.events.find(
          (e) => e.type === 'AttachmentAdded' && e.data.attachmentId === params.attachmentId,
        )
        if (added === undefined || added.type !== 'AttachmentAdded') throw notFound('Attachment')
        await auditRead(request, actor, loaded.state, params.referralId, 'granted')
        const at = { referralId: params.referralId, attachmentId: params.attachmentId }
        const open = async () => {
          const blob = await store.read(at)
          const key = blob === null ? null : await store.key(blob.kid)
          if (blob === null || key === null) {
            // Forgotten patient: close the file the store opened before answering 404.
            const stream = blob?.ciphertext as { destroy?: () => void; return?: () => unknown } | undefined
            if (typeof stream?.destroy === 'function') stream.destroy()
            else await stream?.return?.()
            throw notFound('Attachment content')
          }
          return decryptAttachment(blob.ciphertext, {
            key,
            associatedData: associatedData(at),
            expectedSha256: added.data.sha256,
          })
        }
        // A first pass checks every tag and the hash, so a bad file never starts a 200 response.
        try {
          let verifiedBytes = 0
          for await (const chunk of await open()) verifiedBytes += chunk.length
          if (verifiedBytes !== added.data.sizeBytes) throw new AttachmentIntegrityError('size differs')
        } catch (error) {
          if (error instanceof ProblemError) throw error
          throw new ProblemError(
            httpProblem(
              'internal',
              error instanceof AttachmentIntegrityError
                ? 'The attachment failed its integrity check.'
                : 'The attachment could not be read.',
            ),
          )
        }
        const fileName = 'fileName' in added.data.phi ? added.data.phi.fileName : 'attachment'
        reply
          .type(added.data.contentType)
          .header('content-length', String(added.data.sizeBytes))
          .header('content-disposition', contentDisposition(fileName))
          .header('x-content-type-options', 'nosniff')
        return reply.send(Readable.from(await open()))
      },
    })
  })
}
