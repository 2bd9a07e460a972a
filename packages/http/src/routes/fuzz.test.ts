import { INTAKE_FIELDS } from '@referrals/core'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CODES, createTestProgram, tokenOf } from './public-intake-testing.js'
import {
  buildRoutesTestApp,
  CANARY_NAME,
  CANARY_REASON,
  type RoutesTestApp,
  type Who,
} from './testing-routes.js'

/**
 * Fuzzing every route with malformed input: broken params (ids with forbidden characters, too
 * long, unicode), query junk, bodies with a required field missing or of the wrong type, huge
 * strings, nested junk, prototype-pollution keys, non-JSON text and wrong content types. Each
 * request is sent by a caller who could act on the resource, so decoding is the only barrier.
 * Whatever the input: never a 5xx, never a crash, no stored event (audit streams excepted), no
 * PHI in the logs and no polluted `Object.prototype`.
 */

interface FuzzRow {
  readonly who: Who
  /** The URL with `{name}` placeholders for `params`. */
  readonly path: string
  readonly params: Readonly<Record<string, string>>
  /** A valid body holding only required fields (so removing or retyping any field breaks it). */
  readonly body?: unknown
  /** The body codec accepts any object (commands without data): only non-objects are malformed. */
  readonly anyObjectBody?: boolean
  readonly query?: Readonly<Record<string, string>>
}

const SETTINGS = {
  specialtyId: 'ortho',
  regions: ['north'],
  categories: [{ categoryId: 'knee' }],
  fte: 1,
  insuranceNetworks: [],
  preferredProviderListed: true,
}
const referralBody = {
  referralId: 'fz-new',
  senderPracticeId: 'clinic',
  patientId: 'pat-fz-new',
  phi: {
    patient: { givenName: CANARY_NAME, familyName: 'Example', dateOfBirth: '1975-06-01' },
    reason: CANARY_REASON,
  },
  specialtyId: 'ortho',
  category: { categoryId: 'knee' },
  regionId: 'north',
  urgency: 'routine',
  target: { kind: 'pooled' },
}
const fhirImportBody = (referralId: string, direct = false) => ({
  resourceType: 'ServiceRequest',
  intent: 'order',
  identifier: [{ system: 'urn:referrals:referral-id', value: referralId }],
  requester: { identifier: { system: 'urn:referrals:practice-id', value: 'clinic' } },
  ...(direct
    ? { performer: [{ identifier: { system: 'urn:referrals:practice-id', value: 'spec-a' } }] }
    : {}),
  code: {
    coding: [
      { system: 'urn:referrals:specialty', code: 'ortho' },
      { system: 'urn:referrals:category', code: 'knee' },
    ],
  },
  locationCode: [{ coding: [{ system: 'urn:referrals:region', code: 'north' }] }],
  reasonCode: [{ text: CANARY_REASON }],
  subject: { reference: '#p' },
  contained: [
    {
      resourceType: 'Patient',
      id: 'p',
      identifier: [{ system: 'urn:referrals:patient-id', value: `pat-${referralId}` }],
      name: [{ family: 'Example', given: [CANARY_NAME] }],
      birthDate: '1975-06-01',
    },
  ],
})
const R = { referralId: 'fz-1' }
const P = { practiceId: 'spec-a' }
const S = { specialtyId: 'ortho' }
const PG = { programId: 'fz-prog' }

const ROWS: Readonly<Record<string, FuzzRow>> = {
  'GET /health': { who: 'gp', path: '/health', params: {} },
  'GET /ready': { who: 'gp', path: '/ready', params: {} },
  'GET /me': { who: 'gp', path: '/me', params: {} },
  'POST /practices': {
    who: 'gp',
    path: '/practices',
    params: {},
    body: { practiceId: 'fz-p', name: 'Fz', kind: 'clinic' },
  },
  'GET /practices/{practiceId}': {
    who: 'spec',
    path: '/practices/{practiceId}',
    params: P,
    query: { asOf: '2026-04-01T09:00:00.000Z' },
  },
  'POST /practices/{practiceId}/members': {
    who: 'spec',
    path: '/practices/{practiceId}/members',
    params: P,
    body: { userId: 'fz-u', role: 'staff' },
  },
  'POST /practices/{practiceId}/members/remove': {
    who: 'spec',
    path: '/practices/{practiceId}/members/remove',
    params: P,
    body: { userId: 'fz-staff' },
  },
  'POST /practices/{practiceId}/members/role': {
    who: 'spec',
    path: '/practices/{practiceId}/members/role',
    params: P,
    body: { userId: 'fz-staff', role: 'specialist' },
  },
  'POST /practices/{practiceId}/specialist-settings': {
    who: 'spec',
    path: '/practices/{practiceId}/specialist-settings',
    params: P,
    body: { ...SETTINGS, fte: 0.7 },
  },
  'POST /practices/{practiceId}/fte': {
    who: 'spec',
    path: '/practices/{practiceId}/fte',
    params: P,
    body: { fte: 0.5 },
  },
  'POST /practices/{practiceId}/pause': {
    who: 'spec',
    path: '/practices/{practiceId}/pause',
    params: P,
    body: {},
    anyObjectBody: true,
  },
  'POST /practices/{practiceId}/resume': {
    who: 'spec',
    path: '/practices/{practiceId}/resume',
    params: { practiceId: 'spec-paused' },
    body: {},
    anyObjectBody: true,
  },
  'POST /practices/{practiceId}/verify': {
    who: 'admin',
    path: '/practices/{practiceId}/verify',
    params: { practiceId: 'spec-unverified' },
    body: {},
    anyObjectBody: true,
  },
  'POST /practices/{practiceId}/revoke-verification': {
    who: 'admin',
    path: '/practices/{practiceId}/revoke-verification',
    params: P,
    body: {},
    anyObjectBody: true,
  },
  'GET /practices/{practiceId}/referrals': {
    who: 'gp',
    path: '/practices/{practiceId}/referrals',
    params: { practiceId: 'clinic' },
    query: { box: 'sent', status: 'pending', limit: '5' },
  },
  'GET /practices/{practiceId}/referrals.csv': {
    who: 'gp',
    path: '/practices/{practiceId}/referrals.csv',
    params: { practiceId: 'clinic' },
    query: { box: 'sent' },
  },
  'POST /programs': {
    who: 'spec',
    path: '/programs',
    params: {},
    body: {
      programId: 'fz-new-prog',
      practiceId: 'spec-a',
      name: 'Fz',
      target: { kind: 'direct', practiceId: 'spec-a' },
    },
  },
  'GET /practices/{practiceId}/programs': {
    who: 'spec',
    path: '/practices/{practiceId}/programs',
    params: P,
  },
  'GET /programs/{programId}': { who: 'spec', path: '/programs/{programId}', params: PG },
  'POST /programs/{programId}/consent-versions': {
    who: 'spec',
    path: '/programs/{programId}/consent-versions',
    params: PG,
    body: { consentText: 'I agree to be contacted.', disclosureText: 'Spec A, scheduling only.' },
  },
  'POST /programs/{programId}/intake-guidance': {
    who: 'spec',
    path: '/programs/{programId}/intake-guidance',
    params: PG,
    body: {
      // Only required members: the fuzz treats removing any member as malformed.
      guidance: { faq: [{ question: 'Where is the clinic?', answer: 'Main street 1.' }] },
    },
  },
  'POST /programs/{programId}/incentive-rules': {
    who: 'spec',
    path: '/programs/{programId}/incentive-rules',
    params: PG,
    body: {
      rule: {
        ruleId: 'fz-rule',
        reward: { kind: 'non_cash_gift', description: 'A mug' },
        eligibility: ['referral_completed'],
        caps: { perReferrer: 1, perPeriod: { days: 30, max: 5 } },
        disclosureText: 'Non-cash only.',
      },
    },
  },
  'POST /programs/{programId}/links': {
    who: 'spec',
    path: '/programs/{programId}/links',
    params: PG,
    body: { linkId: 'fz-link-2', attribution: {} },
  },
  'POST /programs/{programId}/links/{linkId}/pause': {
    who: 'spec',
    path: '/programs/{programId}/links/{linkId}/pause',
    params: { ...PG, linkId: 'fz-link' },
    body: {},
    anyObjectBody: true,
  },
  'POST /programs/{programId}/links/{linkId}/resume': {
    who: 'spec',
    path: '/programs/{programId}/links/{linkId}/resume',
    params: { ...PG, linkId: 'fz-paused-link' },
    body: {},
    anyObjectBody: true,
  },
  'POST /programs/{programId}/links/{linkId}/retire': {
    who: 'spec',
    path: '/programs/{programId}/links/{linkId}/retire',
    params: { ...PG, linkId: 'fz-link' },
    body: {},
    anyObjectBody: true,
  },
  'GET /programs/{programId}/funnel': {
    who: 'spec',
    path: '/programs/{programId}/funnel',
    params: PG,
    query: { linkId: 'fz-link' },
  },
  'GET /programs/{programId}/funnel/links.csv': {
    who: 'spec',
    path: '/programs/{programId}/funnel/links.csv',
    params: PG,
    query: { linkId: 'fz-link' },
  },
  'GET /programs/{programId}/funnel/campaigns.csv': {
    who: 'spec',
    path: '/programs/{programId}/funnel/campaigns.csv',
    params: PG,
  },
  'GET /programs/{programId}/incentives': {
    who: 'spec',
    path: '/programs/{programId}/incentives',
    params: PG,
    query: { linkId: 'fz-link' },
  },
  'GET /reports/funnel': {
    who: 'admin',
    path: '/reports/funnel',
    params: {},
    query: { from: '2026-01-01T00:00:00Z', to: '2026-12-01T00:00:00Z', groupBy: 'urgency' },
  },
  'GET /reports/timings': {
    who: 'admin',
    path: '/reports/timings',
    params: {},
    query: { from: '2026-01-01T00:00:00Z', to: '2026-12-01T00:00:00Z', groupBy: 'urgency' },
  },
  'GET /reports/wait-times': {
    who: 'admin',
    path: '/reports/wait-times',
    params: {},
    query: { from: '2026-01-01T00:00:00Z', to: '2026-12-01T00:00:00Z', groupBy: 'urgency' },
  },
  'GET /reports/fairness': {
    who: 'admin',
    path: '/reports/fairness',
    params: {},
    query: { from: '2026-01-01T00:00:00Z', to: '2026-12-01T00:00:00Z', groupBy: 'urgency' },
  },
  'GET /reports/attribution': {
    who: 'admin',
    path: '/reports/attribution',
    params: {},
    query: { from: '2026-01-01T00:00:00Z', to: '2026-12-01T00:00:00Z', groupBy: 'urgency' },
  },
  'GET /reports/programs': {
    who: 'admin',
    path: '/reports/programs',
    params: {},
    query: { from: '2026-01-01T00:00:00Z', to: '2026-12-01T00:00:00Z' },
  },
  'POST /specialties': {
    who: 'admin',
    path: '/specialties',
    params: {},
    body: { specialtyId: 'fz-s', name: 'Fz' },
  },
  'GET /specialties/{specialtyId}': { who: 'gp', path: '/specialties/{specialtyId}', params: S },
  'POST /specialties/{specialtyId}/categories': {
    who: 'admin',
    path: '/specialties/{specialtyId}/categories',
    params: S,
    body: { categoryId: 'fz-c', name: 'Fz category' },
  },
  'POST /specialties/{specialtyId}/categories/approve': {
    who: 'admin',
    path: '/specialties/{specialtyId}/categories/approve',
    params: S,
    body: { categoryId: 'fz-proposed' },
  },
  'POST /specialties/{specialtyId}/categories/rename': {
    who: 'admin',
    path: '/specialties/{specialtyId}/categories/rename',
    params: S,
    body: { categoryId: 'knee', name: 'Knee joint' },
  },
  'POST /specialties/{specialtyId}/categories/retire': {
    who: 'admin',
    path: '/specialties/{specialtyId}/categories/retire',
    params: S,
    body: { categoryId: 'knee' },
  },
  'POST /specialties/{specialtyId}/codings/map': {
    who: 'admin',
    path: '/specialties/{specialtyId}/codings/map',
    params: S,
    body: { system: 'http://snomed.info/sct', code: '72696002', categoryId: 'hip' },
  },
  'POST /specialties/{specialtyId}/codings/unmap': {
    who: 'admin',
    path: '/specialties/{specialtyId}/codings/unmap',
    params: S,
    body: { system: 'http://snomed.info/sct', code: '72696002' },
  },
  'GET /audit.csv': {
    who: 'auditor',
    path: '/audit.csv',
    params: {},
    query: { from: '2026-04-01T00:00:00.000Z', to: '2026-04-02T00:00:00.000Z' },
  },
  'POST /referrals': { who: 'gp', path: '/referrals', params: {}, body: referralBody },
  'GET /referrals/{referralId}': {
    who: 'gp',
    path: '/referrals/{referralId}',
    params: R,
    query: { asOf: '2026-04-01T09:00:00.000Z' },
  },
  'GET /referrals/{referralId}/history': { who: 'gp', path: '/referrals/{referralId}/history', params: R },
  'GET /referrals/{referralId}/routing': { who: 'gp', path: '/referrals/{referralId}/routing', params: R },
  'GET /referrals/{referralId}/fhir': { who: 'gp', path: '/referrals/{referralId}/fhir', params: R },
  'GET /fhir/ServiceRequest/{referralId}': {
    who: 'gp',
    path: '/fhir/ServiceRequest/{referralId}',
    params: R,
  },
  'GET /fhir/Task/{referralId}': { who: 'gp', path: '/fhir/Task/{referralId}', params: R },
  'GET /fhir/metadata': { who: 'gp', path: '/fhir/metadata', params: {} },
  'POST /fhir/ServiceRequest': {
    who: 'gp',
    path: '/fhir/ServiceRequest',
    params: {},
    body: fhirImportBody('fz-fhir'),
  },
  'POST /referrals/{referralId}/accept': {
    who: 'spec',
    path: '/referrals/{referralId}/accept',
    params: R,
    body: {},
    anyObjectBody: true,
  },
  'POST /referrals/{referralId}/decline': {
    who: 'spec',
    path: '/referrals/{referralId}/decline',
    params: R,
    body: { reasonCode: 'capacity' },
  },
  'POST /referrals/{referralId}/redirect': {
    who: 'gp',
    path: '/referrals/{referralId}/redirect',
    params: { referralId: 'fz-returned' },
    body: { target: { kind: 'direct', practiceId: 'spec-b' } },
  },
  'POST /referrals/{referralId}/cancel': {
    who: 'gp',
    path: '/referrals/{referralId}/cancel',
    params: R,
    body: { reasonCode: 'duplicate' },
  },
  'POST /referrals/{referralId}/appointment': {
    who: 'spec',
    path: '/referrals/{referralId}/appointment',
    params: { referralId: 'fz-accepted' },
    body: { at: '2026-05-01T10:00:00.000Z' },
  },
  'POST /referrals/{referralId}/appointment/reschedule': {
    who: 'spec',
    path: '/referrals/{referralId}/appointment/reschedule',
    params: { referralId: 'fz-scheduled' },
    body: { at: '2026-05-02T10:00:00.000Z' },
  },
  'POST /referrals/{referralId}/no-show': {
    who: 'spec',
    path: '/referrals/{referralId}/no-show',
    params: { referralId: 'fz-scheduled' },
    body: {},
    anyObjectBody: true,
  },
  'POST /referrals/{referralId}/complete': {
    who: 'spec',
    path: '/referrals/{referralId}/complete',
    params: { referralId: 'fz-scheduled' },
    body: {},
    anyObjectBody: true,
  },
  'POST /referrals/{referralId}/urgency': {
    who: 'spec',
    path: '/referrals/{referralId}/urgency',
    params: R,
    body: { urgency: 'urgent' },
  },
  'POST /referrals/{referralId}/category': {
    who: 'spec',
    path: '/referrals/{referralId}/category',
    params: R,
    body: { category: { categoryId: 'knee' } },
  },
  'POST /referrals/{referralId}/messages': {
    who: 'gp',
    path: '/referrals/{referralId}/messages',
    params: R,
    body: { messageId: 'fz-m', phi: { body: 'Hello' } },
  },
  'POST /referrals/{referralId}/attachments': {
    who: 'gp',
    path: '/referrals/{referralId}/attachments',
    params: R,
  },
  'GET /referrals/{referralId}/attachments/{attachmentId}': {
    who: 'gp',
    path: '/referrals/{referralId}/attachments/{attachmentId}',
    params: { ...R, attachmentId: 'fz-attachment' },
  },
}

// ------------------------------------------------------------------------------ generators

/** Ids that can never decode (ids are `[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}`). */
const badId = fc.oneof(
  fc.string({ maxLength: 20 }).map((s) => `-${s}`),
  fc.string({ maxLength: 20 }).map((s) => `${s} x`),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).map((s) => `é${s}`),
  fc.integer({ min: 129, max: 5000 }).map((n) => 'a'.repeat(n)),
  fc.constantFrom('__proto__', 'constructor', '..', '%', '%00', '\u0000', '💥', 'a/b', 'a?b=1', 'a#b'),
)

const POLLUTION = [
  '"__proto__":{"polluted":"yes"}',
  '"constructor":{"prototype":{"polluted":"yes"}}',
  '"__proto__":[1,2]',
]

/** Any JSON-like junk, including deep nesting and long or unicode strings. */
const junk: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noDefaultInfinity: false }),
    fc.integer(),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.integer({ min: 1000, max: 200_000 }).map((n) => 'Ω'.repeat(n)),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 4 }),
  ),
})).value

/** A value of another JSON type than `original` (so no codec of the original's type accepts it). */
const otherType = (original: unknown): fc.Arbitrary<unknown> => {
  const candidates: fc.Arbitrary<unknown>[] = []
  if (typeof original !== 'string') candidates.push(fc.string({ unit: 'grapheme', maxLength: 30 }))
  if (typeof original !== 'number') candidates.push(fc.oneof(fc.integer(), fc.double()))
  if (typeof original !== 'boolean') candidates.push(fc.boolean())
  if (original !== null) candidates.push(fc.constant(null))
  if (!Array.isArray(original)) candidates.push(fc.array(junk, { maxLength: 3 }))
  if (typeof original !== 'object' || original === null || Array.isArray(original))
    candidates.push(fc.dictionary(fc.string({ maxLength: 6 }), junk, { maxKeys: 3 }))
  return fc.oneof(...candidates)
}

type Path = readonly (string | number)[]
/** Paths to retype or remove: every object member, array elements only to retype (removing one is valid). */
const leaves = (value: unknown, at: Path = []): Path[] => {
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...at, i]))
  if (value !== null && typeof value === 'object')
    return [
      ...(at.length > 0 ? [at] : []),
      ...Object.entries(value).flatMap(([k, v]) => leaves(v, [...at, k])),
    ]
  return [at]
}
const getAt = (value: unknown, path: Path): unknown =>
  path.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], value)
const setAt = (value: unknown, path: Path, replacement: unknown, remove: boolean): unknown => {
  if (path.length === 0) return replacement
  const [head, ...rest] = path as [string | number, ...Path]
  if (Array.isArray(value)) {
    const copy = [...value]
    if (rest.length === 0 && remove) copy.splice(Number(head), 1)
    else copy[Number(head)] = setAt(copy[Number(head)], rest, replacement, remove)
    return copy
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) }
  if (rest.length === 0 && remove) delete copy[head]
  else copy[head] = setAt(copy[head], rest, replacement, remove)
  return copy
}

/**
 * Free text accepts any non-blank string up to its limit, so only ids and enums get unicode. Named
 * by the last member name on the path (a FHIR `given[0]` is `given`; `text`, `family` are FHIR's).
 */
const FREE_TEXT = new Set([
  'name',
  'givenName',
  'familyName',
  'reason',
  'body',
  'text',
  'family',
  'given',
  'consentText',
  'disclosureText',
  'description',
  'question',
  'answer',
])

interface Payload {
  readonly text: string
  readonly contentType: string
}
const json = (value: unknown): Payload => ({
  text: JSON.stringify(value) ?? 'null',
  contentType: 'application/json',
})
/** Adds prototype-pollution members to a serialised object (JSON.stringify cannot write `__proto__` keys). */
const withPollution = (text: string, member: string): string =>
  text.startsWith('{') ? (text === '{}' ? `{${member}}` : `{${member},${text.slice(1)}`) : text

const malformedBody = (row: FuzzRow): fc.Arbitrary<Payload> => {
  const sample = row.body ?? {}
  const paths = leaves(sample)
  const nonObjects = fc.oneof(
    fc.array(junk, { maxLength: 4 }),
    fc.string({ maxLength: 30 }),
    fc.integer(),
    fc.boolean(),
  )
  const options: fc.Arbitrary<Payload>[] = [
    nonObjects.map(json),
    fc.string({ maxLength: 60 }).map((text) => ({ text: `{,${text}`, contentType: 'application/json' })),
    fc
      .tuple(
        fc.constantFrom(
          'text/plain',
          'application/xml',
          'application/octet-stream',
          'application/x-www-form-urlencoded',
        ),
        fc.string({ maxLength: 40 }),
      )
      .map(([contentType, text]) => ({ text, contentType })),
  ]
  if (!row.anyObjectBody) {
    options.push(
      fc
        .dictionary(
          fc.string({ maxLength: 8 }).map((k) => `~${k}`),
          junk,
          { maxKeys: 5 },
        )
        .map(json),
    )
  }
  if (paths.length > 0) {
    const path = fc.constantFrom(...paths)
    options.push(
      path.chain((p) => otherType(getAt(sample, p)).map((v) => json(setAt(sample, p, v, false)))),
      fc
        .constantFrom(...paths.filter((p) => typeof p.at(-1) === 'string'))
        .map((p) => json(setAt(sample, p, undefined, true))),
      fc.tuple(path, fc.constantFrom(...POLLUTION)).chain(([p, member]) =>
        otherType(getAt(sample, p)).map((v) => ({
          text: withPollution(JSON.stringify(setAt(sample, p, v, false)), member),
          contentType: 'application/json',
        })),
      ),
    )
    const stringPaths = paths.filter((p) => typeof getAt(sample, p) === 'string')
    if (stringPaths.length > 0) {
      options.push(
        fc
          .tuple(fc.constantFrom(...stringPaths), fc.integer({ min: 20_001, max: 400_000 }))
          .map(([p, n]) => json(setAt(sample, p, 'x'.repeat(n), false))),
      )
    }
    const idPaths = stringPaths.filter(
      (p) => !FREE_TEXT.has(String(p.findLast((k) => typeof k === 'string'))),
    )
    if (idPaths.length > 0) {
      options.push(
        fc
          .tuple(fc.constantFrom(...idPaths), fc.string({ unit: 'grapheme', maxLength: 10 }))
          .map(([p, s]) => json(setAt(sample, p, `${String(getAt(sample, p))}ü${s}`, false))),
      )
    }
  }
  return fc.oneof(...options)
}

const BOUNDARY = 'fz-boundary'
const malformedMultipart = fc.oneof(
  fc
    .uint8Array({ maxLength: 300 })
    .map((bytes) => ({ text: Buffer.from(bytes), contentType: `multipart/form-data; boundary=${BOUNDARY}` })),
  fc.string({ maxLength: 200 }).map((s) => ({
    text: Buffer.from(`--${BOUNDARY}\r\n${s}`),
    contentType: `multipart/form-data; boundary=${BOUNDARY}`,
  })),
  fc.string({ maxLength: 200 }).map((s) => ({ text: Buffer.from(s), contentType: 'multipart/form-data' })),
  fc
    .tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), fc.string({ maxLength: 60 }))
    .map(([name, type, content]) => ({
      text: Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}"\r\nContent-Type: ${type}\r\n\r\n${content}\r\n--${BOUNDARY}--\r\n`,
      ),
      contentType: `multipart/form-data; boundary=${BOUNDARY}`,
    })),
)

const junkQuery = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      'box',
      'status',
      'limit',
      'cursor',
      'asOf',
      'patient',
      'sentFrom',
      '__proto__',
      'constructor',
    ),
    fc.string({ maxLength: 10 }),
  ),
  fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.integer({ min: 1000, max: 20_000 }).map((n) => 'q'.repeat(n)),
  ),
  { maxKeys: 4 },
)

const urlOf = (
  row: FuzzRow,
  params: Readonly<Record<string, string>>,
  query?: Readonly<Record<string, string>>,
) => {
  let url = row.path
  for (const [name, value] of Object.entries(params))
    url = url.replace(`{${name}}`, encodeURIComponent(value))
  const search = query === undefined ? '' : new URLSearchParams(Object.entries(query)).toString()
  return search === '' ? url : `${url}?${search}`
}

/** One malformed request for the row: broken params, junk query, or a malformed body. */
const malformedRequest = (route: string, row: FuzzRow) => {
  const method = route.split(' ')[0] as 'GET' | 'POST'
  const names = Object.keys(row.params)
  const badParams =
    names.length === 0
      ? []
      : [
          fc.tuple(fc.constantFrom(...names), badId).map(([name, value]) => ({
            url: urlOf(row, { ...row.params, [name]: value }, row.query),
            payload: undefined,
          })),
        ]
  const query =
    method === 'GET'
      ? [junkQuery.map((q) => ({ url: urlOf(row, row.params, { ...row.query, ...q }), payload: undefined }))]
      : []
  const bodies =
    method !== 'POST'
      ? []
      : route.endsWith('/attachments')
        ? [malformedMultipart.map((payload) => ({ url: urlOf(row, row.params), payload }))]
        : [malformedBody(row).map((payload) => ({ url: urlOf(row, row.params), payload }))]
  return fc.oneof(...badParams, ...query, ...bodies)
}

// ---------------------------------------------------------------------------------------------

/** The fuzzing world: referrals in each state the command rows need, a paused and an unverified practice. */
const buildWorld = async (): Promise<RoutesTestApp> => {
  const t = await buildRoutesTestApp()
  const ok = t.ok
  await ok('gp', 'POST', '/referrals', t.referral('fz-1'))
  await ok('gp', 'POST', '/referrals', t.referral('fz-returned'))
  await ok('spec', 'POST', '/referrals/fz-returned/decline', { reasonCode: 'capacity' })
  await ok('gp', 'POST', '/referrals', t.referral('fz-accepted'))
  await ok('spec', 'POST', '/referrals/fz-accepted/accept', {})
  await ok('gp', 'POST', '/referrals', t.referral('fz-scheduled'))
  await ok('spec', 'POST', '/referrals/fz-scheduled/accept', {})
  await ok('spec', 'POST', '/referrals/fz-scheduled/appointment', { at: '2026-04-01T09:30:00.000Z' })
  t.clock.advance(3_600_000)
  await ok('spec', 'POST', '/practices/spec-a/members', { userId: 'fz-staff', role: 'staff' })
  for (const [id, verify, pause] of [
    ['spec-paused', true, true],
    ['spec-unverified', false, false],
  ] as const) {
    await ok('spec', 'POST', '/practices', { practiceId: id, name: id, kind: 'specialist' })
    await ok('spec', 'POST', `/practices/${id}/specialist-settings`, SETTINGS)
    if (verify) await ok('admin', 'POST', `/practices/${id}/verify`, {})
    if (pause) await ok('spec', 'POST', `/practices/${id}/pause`, {})
  }
  await ok('spec', 'POST', '/specialties/ortho/categories', { categoryId: 'fz-proposed', name: 'Proposed' })
  await ok('spec', 'POST', '/programs', {
    programId: 'fz-prog',
    practiceId: 'spec-a',
    name: 'Fz program',
    target: { kind: 'direct', practiceId: 'spec-a' },
  })
  await ok('spec', 'POST', '/programs/fz-prog/links', {
    linkId: 'fz-link',
    attribution: { channel: 'email' },
  })
  await ok('spec', 'POST', '/programs/fz-prog/links', { linkId: 'fz-paused-link', attribution: {} })
  await ok('spec', 'POST', '/programs/fz-prog/links/fz-paused-link/pause', {})
  return t
}

describe('fuzzing every route with malformed input', () => {
  let t: RoutesTestApp
  beforeAll(async () => {
    t = await buildWorld()
  })
  afterAll(async () => {
    await t.app.close()
  })

  it('has a row for every documented route', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    )
    expect([...documented].sort()).toEqual(Object.keys(ROWS).sort())
  })

  it('accepts the valid samples the mutations start from (on a world of their own)', async () => {
    const w = await buildWorld()
    try {
      for (const route of [
        'POST /practices',
        'POST /practices/{practiceId}/members',
        'POST /practices/{practiceId}/specialist-settings',
        'POST /practices/{practiceId}/fte',
        'POST /specialties',
        'POST /specialties/{specialtyId}/categories',
        'POST /referrals',
        'POST /fhir/ServiceRequest',
        'POST /referrals/{referralId}/urgency',
        'POST /referrals/{referralId}/messages',
        'POST /programs',
        'POST /programs/{programId}/consent-versions',
        'POST /programs/{programId}/intake-guidance',
        'POST /programs/{programId}/incentive-rules',
        'POST /programs/{programId}/links',
      ]) {
        const row = ROWS[route] as FuzzRow
        const res = await w.call(row.who, 'POST', urlOf(row, row.params), row.body)
        expect(res.statusCode, route).toBeLessThan(300)
      }
    } finally {
      await w.app.close()
    }
  })

  for (const [route, row] of Object.entries(ROWS)) {
    it(`${route}: malformed requests get 4xx and change nothing`, async () => {
      const method = route.split(' ')[0] as 'GET' | 'POST'
      const before = t.domainEvents().length
      await fc.assert(
        fc.asyncProperty(malformedRequest(route, row), async ({ url, payload }) => {
          const res =
            payload === undefined
              ? await t.call(row.who, method, url)
              : await t.call(row.who, method, url, payload.text, { 'content-type': payload.contentType })
          if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${method} ${url.slice(0, 200)}`)
          if (method === 'POST' && res.statusCode < 400)
            throw new Error(`${res.statusCode} for a malformed ${method} ${url.slice(0, 200)}`)
          const added = t.domainEvents().slice(before)
          if (added.length > 0)
            throw new Error(
              `stored ${added.map((e) => `${e.streamId}:${e.type}`).join(', ')} (status ${res.statusCode})`,
            )
        }),
        // No shrinking: once a request changed the store every later one fails too, so the first
        // failure is the one to report.
        { numRuns: Number(process.env.FUZZ_RUNS ?? 200), endOnFailure: true },
      )
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      expect(t.logs()).not.toContain(CANARY_NAME)
      expect(t.logs()).not.toContain(CANARY_REASON)
    })
  }
})

// ------------------------------------------------------------------ the public intake pages

/**
 * The public intake pages (`/r/:code`, HTML, left out of the OpenAPI document) get the same
 * treatment: bad codes, and submissions that are malformed whichever way (a required field blank,
 * too long or of the wrong form, the honeypot filled, a junk token, junk bodies and pollution
 * keys, wrong content types, oversized bodies). Never a 5xx, always a 4xx for a malformed POST,
 * nothing stored, no submitted value in the page or the logs, no polluted prototype.
 */
const INTAKE_CANARY = 'Zqfuzzintake'
const F = INTAKE_FIELDS
const validIntake = (token: string): Record<string, string> => ({
  token,
  [F.submittedBy]: 'patient',
  [F.patientGivenName]: INTAKE_CANARY,
  [F.patientFamilyName]: 'Example',
  [F.patientDateOfBirth]: '1975-06-01',
  [F.consentVersion]: '1',
  [F.consentAgreed]: 'yes',
})
const notPositiveInteger = (s: string) => !(Number.isInteger(Number(s.trim())) && Number(s.trim()) >= 1)
/** For each field, values that can never be valid there. */
const INVALID_VALUES: Readonly<Record<string, fc.Arbitrary<string>>> = {
  [F.submittedBy]: fc.string({ maxLength: 20 }).filter((s) => !['patient', 'caregiver'].includes(s.trim())),
  [F.patientGivenName]: fc.oneof(
    fc.constantFrom('', '   ', '\t'),
    fc.integer({ min: 201, max: 5000 }).map((n) => 'g'.repeat(n)),
  ),
  [F.patientFamilyName]: fc.integer({ min: 201, max: 5000 }).map((n) => 'f'.repeat(n)),
  [F.patientDateOfBirth]: fc.oneof(
    fc.string({ maxLength: 12 }).filter((s) => !/^\d{4}-\d{2}-\d{2}$/.test(s.trim())),
    fc.constantFrom('1975-02-30', '2999-01-01', '1975-13-01'),
  ),
  [F.patientEmail]: fc
    .string({ minLength: 1, maxLength: 40 })
    .filter((s) => s.trim() !== '' && !s.includes('@')),
  [F.patientPhone]: fc.string({ minLength: 1, maxLength: 6 }).filter((s) => s.trim() !== ''),
  [F.reason]: fc.integer({ min: 2001, max: 20_000 }).map((n) => 'r'.repeat(n)),
  [F.consentVersion]: fc.string({ maxLength: 8 }).filter(notPositiveInteger),
  [F.consentAgreed]: fc.string({ maxLength: 8 }).filter((s) => s !== 'yes'),
  website: fc.string({ minLength: 1, maxLength: 30 }),
  token: fc.oneof(badId, fc.constantFrom('', 'no-such-intake')),
}
const form = (fields: Readonly<Record<string, string>>) => new URLSearchParams(fields).toString()
const FORM_TYPE = 'application/x-www-form-urlencoded'

const malformedIntake = (token: string): fc.Arbitrary<{ body: string; contentType: string }> =>
  fc.oneof(
    // One field made invalid (or removed, for the required ones) in an otherwise valid form.
    fc.constantFrom(...Object.keys(INVALID_VALUES)).chain((field) =>
      (INVALID_VALUES[field] as fc.Arbitrary<string>).map((v) => ({
        body: form({ ...validIntake(token), [field]: v }),
        contentType: FORM_TYPE,
      })),
    ),
    fc
      .constantFrom(
        F.submittedBy,
        F.patientGivenName,
        F.patientFamilyName,
        F.patientDateOfBirth,
        F.consentAgreed,
      )
      .map((field) => {
        const { [field]: _removed, ...rest } = validIntake(token)
        return { body: form(rest), contentType: FORM_TYPE }
      }),
    // Junk forms, pollution keys, too many fields, and bodies of other types.
    fc.string({ maxLength: 200 }).map((body) => ({ body, contentType: FORM_TYPE })),
    fc
      .dictionary(
        fc.oneof(fc.constantFrom(...Object.values(F)), fc.string({ maxLength: 8 })),
        fc.string({ maxLength: 30 }),
        {
          maxKeys: 8,
        },
      )
      .map((d) => ({ body: form(d), contentType: FORM_TYPE })),
    fc
      .constantFrom(
        '__proto__[polluted]=yes',
        '__proto__=x&constructor[prototype][polluted]=yes',
        'constructor=1',
      )
      .map((junkMember) => ({
        body: `${form(validIntake(token))}&website=x&${junkMember}`,
        contentType: FORM_TYPE,
      })),
    fc.integer({ min: 41, max: 200 }).map((n) => ({
      body: Array.from({ length: n }, (_, i) => `f${i}=1`).join('&'),
      contentType: FORM_TYPE,
    })),
    fc.integer({ min: 33 * 1024, max: 200_000 }).map((n) => ({
      body: form({ ...validIntake(token), [F.reason]: 'x'.repeat(n) }),
      contentType: FORM_TYPE,
    })),
    fc
      .tuple(
        fc.constantFrom('application/json', 'text/plain', 'multipart/form-data', 'application/xml'),
        fc.string({ maxLength: 60 }),
      )
      .map(([contentType, body]) => ({
        body: contentType === 'application/json' ? JSON.stringify(validIntake(token)) : body,
        contentType,
      })),
  )

describe('fuzzing the public intake pages', () => {
  let t: RoutesTestApp
  let token: string
  beforeAll(async () => {
    t = await buildRoutesTestApp()
    await createTestProgram(t)
    token = tokenOf((await t.app.inject({ method: 'GET', url: `/r/${CODES.active}` })).body)
  })
  afterAll(async () => {
    await t.app.close()
  })

  it('accepts the valid sample the mutations start from (on a world of its own)', async () => {
    const w = await buildRoutesTestApp()
    try {
      await createTestProgram(w)
      const own = tokenOf((await w.app.inject({ method: 'GET', url: `/r/${CODES.active}` })).body)
      const res = await w.app.inject({
        method: 'POST',
        url: `/r/${CODES.active}`,
        payload: form(validIntake(own)),
        headers: { 'content-type': FORM_TYPE },
      })
      expect(res.statusCode).toBe(200)
    } finally {
      await w.app.close()
    }
  })

  it('GET /r/{code} with a bad code: 404, nothing stored', async () => {
    const before = t.domainEvents().length
    await fc.assert(
      fc.asyncProperty(fc.oneof(badId, fc.string({ maxLength: 40 })), async (code) => {
        const res = await t.app.inject({ method: 'GET', url: `/r/${encodeURIComponent(code)}` })
        if (res.statusCode >= 500) throw new Error(`${res.statusCode} for GET /r/${code.slice(0, 100)}`)
        if (res.statusCode === 200) throw new Error(`200 for a bad code ${code.slice(0, 100)}`)
        if (t.domainEvents().length !== before) throw new Error('stored an event')
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 200), endOnFailure: true },
    )
  })

  it('POST /r/{code}: malformed submissions get 4xx, change nothing and echo nothing', async () => {
    const before = t.domainEvents().length
    await fc.assert(
      fc.asyncProperty(malformedIntake(token), async ({ body, contentType }) => {
        const res = await t.app.inject({
          method: 'POST',
          url: `/r/${CODES.active}`,
          payload: body,
          headers: { 'content-type': contentType },
        })
        if (res.statusCode >= 500 || res.statusCode < 400)
          throw new Error(`${res.statusCode} for a malformed form ${body.slice(0, 200)}`)
        if (res.body.includes(INTAKE_CANARY)) throw new Error('a submitted value came back')
        const added = t.domainEvents().slice(before)
        if (added.length > 0) throw new Error(`stored ${added.map((e) => e.type).join(', ')}`)
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 200), endOnFailure: true },
    )
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(t.logs()).not.toContain(INTAKE_CANARY)
  })
})
