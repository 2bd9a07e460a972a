import * as t from 'io-ts'
import type { EventId, PatientId, StreamId } from '../shared/ids.js'

/**
 * Ports for protecting PHI at rest (SPEC §3 "Privacy and audit"). The core only names them; the
 * node:crypto implementations live in `@referrals/crypto`, so the domain stays pure.
 */

/** Where a sealed value lives. Both ids are bound into the ciphertext as associated data. */
export interface SealContext {
  readonly streamId: StreamId
  readonly eventId: EventId
}

const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/

const Base64Url = new t.Type<string, string, unknown>(
  'Base64Url',
  (u): u is string => typeof u === 'string' && BASE64URL_PATTERN.test(u),
  (u, c) => (typeof u === 'string' && BASE64URL_PATTERN.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const NonEmptyBase64Url = new t.Type<string, string, unknown>(
  'NonEmptyBase64Url',
  (u): u is string => Base64Url.is(u) && u.length > 0,
  (u, c) => (Base64Url.is(u) && u.length > 0 ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/**
 * A PHI value sealed with AES-256-GCM under a per-patient data key. All byte strings are
 * base64url without padding. `kid` names the data key in the key store; it reveals nothing about
 * the patient.
 */
export interface SealedPhi {
  readonly sealed: {
    readonly v: 1
    readonly alg: 'A256GCM'
    readonly kid: string
    readonly iv: string
    readonly ct: string
    readonly tag: string
  }
}

export const SealedPhi: t.Type<SealedPhi, SealedPhi, unknown> = t.readonly(
  t.strict({
    sealed: t.readonly(
      t.strict({
        v: t.literal(1),
        alg: t.literal('A256GCM'),
        kid: NonEmptyBase64Url,
        iv: NonEmptyBase64Url,
        ct: Base64Url,
        tag: NonEmptyBase64Url,
      }),
    ),
  }),
  'SealedPhi',
)

export const isSealedPhi = (u: unknown): u is SealedPhi => SealedPhi.is(u)

/** The result of opening a sealed value: the PHI, or the fact that the patient was forgotten. */
export type OpenResult = { readonly kind: 'plain'; readonly phi: unknown } | { readonly kind: 'forgotten' }

/**
 * Thrown by `PhiCipher.open` when a sealed value fails authentication: it was altered, or it was
 * copied from another stream or event. The message never contains PHI or key material.
 */
export class SealedPhiAuthenticationError extends Error {
  override readonly name = 'SealedPhiAuthenticationError'
  constructor(readonly context: SealContext) {
    super(`sealed PHI failed authentication for event ${context.eventId} in stream ${context.streamId}`)
  }
}

/**
 * Thrown by `PatientKeyStore.getOrCreate` (and so by `PhiCipher.seal`) for a patient who was
 * forgotten: forgetting lasts, so no new data key is ever created for them and no new PHI of theirs
 * can be recorded. `executeCommand` turns it into the domain error `patient.forgotten`. The message
 * names no patient.
 */
export class PatientForgottenError extends Error {
  override readonly name = 'PatientForgottenError'
  constructor() {
    super('the patient was forgotten: no new data key can be created and no new PHI sealed for them')
  }
}

/** True for a `PatientForgottenError`, also one thrown by another copy of this module. */
export const isPatientForgottenError = (u: unknown): u is PatientForgottenError =>
  u instanceof PatientForgottenError || (u instanceof Error && u.name === 'PatientForgottenError')

export interface PhiCipher {
  /**
   * Serialises `phi` as JSON and seals it under the patient's data key (created on first use).
   * Throws `PatientForgottenError` once the patient was forgotten.
   */
  seal(ctx: SealContext, patientId: PatientId, phi: unknown): Promise<SealedPhi>
  /**
   * Opens a sealed value sealed for exactly this context. `{ kind: 'forgotten' }` once the
   * patient's key is destroyed; throws `SealedPhiAuthenticationError` on tampering.
   */
  open(ctx: SealContext, sealed: SealedPhi): Promise<OpenResult>
  /**
   * Destroys the patient's data key: every value sealed for the patient becomes unreadable, and
   * no new value can be sealed for them (`seal` throws `PatientForgottenError`).
   */
  forgetPatient(patientId: PatientId): Promise<void>
}

/** Per-patient data keys, stored wrapped by a master key, in a store separate from the events. */
export interface PatientKeyStore {
  /**
   * The patient's data key, created on first use. Throws `PatientForgottenError` for a patient
   * that `destroy` forgot: a forgotten patient never gets a new key.
   */
  getOrCreate(patientId: PatientId): Promise<{ kid: string; key: Uint8Array }>
  /** The data key named `kid`, or `null` when it never existed or was destroyed. */
  get(kid: string): Promise<Uint8Array | null>
  /**
   * Forgets the patient for good: destroys the data key and leaves a tombstone (no key material),
   * so a later `getOrCreate` throws `PatientForgottenError`. Idempotent; also forgets a patient who
   * has no key yet.
   */
  destroy(patientId: PatientId): Promise<void>
}

/** Fields that can be searched without storing their plaintext. */
export type BlindIndexField = 'patient_name' | 'health_number'

/**
 * A keyed, deterministic token of a normalised value: equal inputs (after normalisation) give
 * equal tokens, so the database can be searched by token without holding the plaintext.
 */
export interface BlindIndex {
  token(field: BlindIndexField, value: string): string
}
