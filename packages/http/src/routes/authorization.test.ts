import { INTAKE_FIELDS } from '@referrals/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CODES, createTestProgram, tokenOf } from './public-intake-testing.js'
import { buildRoutesTestApp, type RoutesTestApp } from './testing-routes.js'

/**
 * The authorization matrix: every documented route × every kind of caller, with the exact status
 * each must get. Callers: `gp` owns `clinic` (the sending practice); `spec` owns `spec-a` (the
 * recipient, or the owner of the practice under test); `other` owns `spec-b` (another practice);
 * `stranger` has no practice; `admin` and `auditor` are platform roles; `anonymous` has no token.
 * The rows are checked against the OpenAPI document, so a new route without a row fails.
 */
const CALLERS = ['gp', 'spec', 'other', 'stranger', 'admin', 'auditor', 'anonymous'] as const
type Caller = (typeof CALLERS)[number]
type Expected = Readonly<Record<Caller, number>>

interface Request {
  readonly url: string
  readonly body?: unknown
  readonly multipart?: boolean
}

interface Row {
  /** Creates what the call acts on (fresh for every cell, `n` is unique) and returns the request. */
  readonly prepare: (t: RoutesTestApp, n: string) => Promise<Request>
  readonly expect: Expected
  /** Runs on an app of its own (the call leaves callers with memberships they must not keep). */
  readonly isolated?: boolean
}

const everyone = (status: number): Expected => ({
  gp: status,
  spec: status,
  other: status,
  stranger: status,
  admin: status,
  auditor: status,
  anonymous: 401,
})
const only = (allowed: Partial<Record<Caller, number>>, otherwise: number): Expected => ({
  ...everyone(otherwise),
  ...allowed,
})

const BOUNDARY = '----matrix-boundary'
const pdfUpload = Buffer.from(
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7 matrix\r\n--${BOUNDARY}--\r\n`,
)

const must = async (
  t: RoutesTestApp,
  who: Parameters<RoutesTestApp['ok']>[0],
  url: string,
  body?: unknown,
) => {
  await t.ok(who, 'POST', url, body)
}

/** A referral from `clinic` directly to `spec-a`, moved on to `status`. */
const referralIn = async (
  t: RoutesTestApp,
  n: string,
  status: 'pending' | 'accepted' | 'scheduled' | 'returned',
  appointmentAt = '2026-05-01T10:00:00.000Z',
): Promise<string> => {
  const id = `mx-${n}`
  await must(t, 'gp', '/referrals', t.referral(id))
  if (status === 'returned') await must(t, 'spec', `/referrals/${id}/decline`, { reasonCode: 'capacity' })
  if (status === 'accepted' || status === 'scheduled') await must(t, 'spec', `/referrals/${id}/accept`, {})
  if (status === 'scheduled') await must(t, 'spec', `/referrals/${id}/appointment`, { at: appointmentAt })
  return `/referrals/${id}`
}

/** `t.referral(id)` as the FHIR ServiceRequest (contained Patient) that POST /fhir/ServiceRequest imports. */
const fhirBody = (t: RoutesTestApp, referralId: string) => {
  const r = t.referral(referralId)
  return {
    resourceType: 'ServiceRequest',
    intent: 'order',
    identifier: [{ system: 'urn:referrals:referral-id', value: r.referralId }],
    requester: { identifier: { system: 'urn:referrals:practice-id', value: r.senderPracticeId } },
    performer: [{ identifier: { system: 'urn:referrals:practice-id', value: 'spec-a' } }],
    code: {
      coding: [
        { system: 'urn:referrals:specialty', code: r.specialtyId },
        { system: 'urn:referrals:category', code: r.category.categoryId },
      ],
    },
    locationCode: [{ coding: [{ system: 'urn:referrals:region', code: r.regionId }] }],
    reasonCode: [{ text: r.phi.reason }],
    subject: { reference: '#p' },
    contained: [
      {
        resourceType: 'Patient',
        id: 'p',
        identifier: [{ system: 'urn:referrals:patient-id', value: r.patientId }],
        name: [{ family: r.phi.patient.familyName, given: [r.phi.patient.givenName] }],
        birthDate: r.phi.patient.dateOfBirth,
      },
    ],
  }
}

/** A specialist practice owned by `spec`, configured, verified unless asked otherwise. */
const practiceOfSpec = async (t: RoutesTestApp, n: string, verified = true): Promise<string> => {
  const id = `px-${n}`
  await must(t, 'spec', '/practices', { practiceId: id, name: id, kind: 'specialist' })
  await must(t, 'spec', `/practices/${id}/specialist-settings`, SETTINGS)
  if (verified) await must(t, 'admin', `/practices/${id}/verify`, {})
  return `/practices/${id}`
}

/** A referral program of `spec-a` (owned by `spec`) with one link `l`, consent published. */
const programOfSpec = async (t: RoutesTestApp, n: string): Promise<string> => {
  const id = `pg-${n}`
  await must(t, 'spec', '/programs', {
    programId: id,
    practiceId: 'spec-a',
    name: 'Program',
    target: { kind: 'direct', practiceId: 'spec-a' },
  })
  await must(t, 'spec', `/programs/${id}/links`, { linkId: 'l', attribution: { channel: 'email' } })
  return `/programs/${id}`
}
/** Reads of a program: where its practice is visible. */
const programRead: Expected = only({ spec: 200, admin: 200, auditor: 200 }, 404)

const SETTINGS = {
  specialtyId: 'ortho',
  regions: ['north'],
  categories: [{ categoryId: 'knee' }],
  fte: 1,
  insuranceNetworks: [],
  preferredProviderListed: true,
}

/** Sender-side referral commands: the sender 2xx, the recipient 403, outsiders 404 (existence hidden). */
const sender = (status = 200): Expected => only({ gp: status, spec: 403, auditor: 403 }, 404)
/** Recipient-side referral commands. */
const recipient: Expected = only({ gp: 403, spec: 200, auditor: 403 }, 404)
/** Reads of a referral with PHI: both sides and auditors. */
const referralRead: Expected = only({ gp: 200, spec: 200, auditor: 200 }, 404)
/**
 * Commands on a practice owned by `spec`: the owner acts; admins (verification only) and auditors
 * (read-only) may see the practice but not change it: 403; outsiders 404.
 */
const practiceOwner: Expected = only({ spec: 200, admin: 403, auditor: 403 }, 404)
/** Admin-only practice commands. */
const practiceAdmin: Expected = only({ spec: 403, admin: 200, auditor: 403 }, 404)
/** Admin-only catalog commands (the catalog is not secret, so 403 rather than 404). */
const catalogAdmin = (status = 200): Expected => only({ admin: status }, 403)

/** The period of the report rows: `from` inclusive, `to` exclusive (RFC 3339). */
const PERIOD = 'from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z'

const MATRIX: Readonly<Record<string, Row>> = {
  'GET /health': { prepare: async () => ({ url: '/health' }), expect: { ...everyone(200), anonymous: 200 } },
  'GET /ready': { prepare: async () => ({ url: '/ready' }), expect: { ...everyone(200), anonymous: 200 } },
  'GET /me': { prepare: async () => ({ url: '/me' }), expect: everyone(200) },

  'POST /practices': {
    prepare: async (_t, n) => ({
      url: '/practices',
      body: { practiceId: `new-${n}`, name: 'New', kind: 'clinic' },
    }),
    // Anyone signed in may create a practice, except read-only auditor accounts.
    expect: { ...everyone(201), auditor: 403 },
    isolated: true,
  },
  'GET /practices/{practiceId}': {
    prepare: async () => ({ url: '/practices/clinic' }),
    expect: only({ gp: 200, admin: 200, auditor: 200 }, 404),
  },
  'POST /practices/{practiceId}/members': {
    prepare: async (t, n) => ({
      url: `${await practiceOfSpec(t, n)}/members`,
      body: { userId: `u-${n}`, role: 'staff' },
    }),
    expect: practiceOwner,
  },
  'POST /practices/{practiceId}/members/remove': {
    prepare: async (t, n) => {
      const url = await practiceOfSpec(t, n)
      await must(t, 'spec', `${url}/members`, { userId: `u-${n}`, role: 'staff' })
      return { url: `${url}/members/remove`, body: { userId: `u-${n}` } }
    },
    expect: practiceOwner,
  },
  'POST /practices/{practiceId}/members/role': {
    prepare: async (t, n) => {
      const url = await practiceOfSpec(t, n)
      await must(t, 'spec', `${url}/members`, { userId: `u-${n}`, role: 'staff' })
      return { url: `${url}/members/role`, body: { userId: `u-${n}`, role: 'specialist' } }
    },
    expect: practiceOwner,
  },
  'POST /practices/{practiceId}/specialist-settings': {
    prepare: async (t, n) => ({
      url: `${await practiceOfSpec(t, n)}/specialist-settings`,
      body: { ...SETTINGS, fte: 0.8 },
    }),
    expect: practiceOwner,
  },
  'POST /practices/{practiceId}/fte': {
    prepare: async (t, n) => ({ url: `${await practiceOfSpec(t, n)}/fte`, body: { fte: 0.5 } }),
    expect: practiceOwner,
  },
  'POST /practices/{practiceId}/pause': {
    prepare: async (t, n) => ({ url: `${await practiceOfSpec(t, n)}/pause`, body: {} }),
    expect: practiceOwner,
  },
  'POST /practices/{practiceId}/resume': {
    prepare: async (t, n) => {
      const url = await practiceOfSpec(t, n)
      await must(t, 'spec', `${url}/pause`, {})
      return { url: `${url}/resume`, body: {} }
    },
    expect: practiceOwner,
  },
  'POST /practices/{practiceId}/verify': {
    prepare: async (t, n) => ({ url: `${await practiceOfSpec(t, n, false)}/verify`, body: {} }),
    expect: practiceAdmin,
  },
  'POST /practices/{practiceId}/revoke-verification': {
    prepare: async (t, n) => ({ url: `${await practiceOfSpec(t, n)}/revoke-verification`, body: {} }),
    expect: practiceAdmin,
  },
  'GET /practices/{practiceId}/referrals': {
    prepare: async () => ({ url: '/practices/clinic/referrals?box=sent' }),
    expect: only({ gp: 200 }, 404),
  },
  'GET /practices/{practiceId}/referrals.csv': {
    prepare: async () => ({ url: '/practices/clinic/referrals.csv?box=sent' }),
    expect: only({ gp: 200 }, 404),
  },

  'POST /programs': {
    prepare: async (_t, n) => ({
      url: '/programs',
      body: {
        programId: `pn-${n}`,
        practiceId: 'spec-a',
        name: 'P',
        target: { kind: 'direct', practiceId: 'spec-a' },
      },
    }),
    expect: { ...practiceOwner, spec: 201 },
  },
  'GET /practices/{practiceId}/programs': {
    prepare: async (t, n) => {
      await programOfSpec(t, n)
      return { url: '/practices/spec-a/programs' }
    },
    expect: programRead,
  },
  'GET /programs/{programId}': {
    prepare: async (t, n) => ({ url: await programOfSpec(t, n) }),
    expect: programRead,
  },
  'POST /programs/{programId}/consent-versions': {
    prepare: async (t, n) => ({
      url: `${await programOfSpec(t, n)}/consent-versions`,
      body: { consentText: 'I agree to be contacted.', disclosureText: 'Clinic A, scheduling only.' },
    }),
    expect: practiceOwner,
  },
  'POST /programs/{programId}/intake-guidance': {
    prepare: async (t, n) => ({
      url: `${await programOfSpec(t, n)}/intake-guidance`,
      body: { guidance: { faq: [{ question: 'Where?', answer: 'Main street 1.' }] } },
    }),
    expect: practiceOwner,
  },
  'POST /programs/{programId}/incentive-rules': {
    prepare: async (t, n) => ({
      url: `${await programOfSpec(t, n)}/incentive-rules`,
      body: {
        rule: {
          ruleId: 'r',
          reward: { kind: 'patient_education', description: 'A booklet' },
          eligibility: ['referral_completed'],
          caps: { perReferrer: 1, perPeriod: { days: 30, max: 5 } },
          disclosureText: 'Non-cash only.',
        },
      },
    }),
    expect: practiceOwner,
  },
  'POST /programs/{programId}/links': {
    prepare: async (t, n) => ({
      url: `${await programOfSpec(t, n)}/links`,
      body: { linkId: 'l2', attribution: { campaign: 'spring' } },
    }),
    expect: practiceOwner,
  },
  'POST /programs/{programId}/links/{linkId}/pause': {
    prepare: async (t, n) => ({ url: `${await programOfSpec(t, n)}/links/l/pause`, body: {} }),
    expect: practiceOwner,
  },
  'POST /programs/{programId}/links/{linkId}/resume': {
    prepare: async (t, n) => {
      const url = await programOfSpec(t, n)
      await must(t, 'spec', `${url}/links/l/pause`, {})
      return { url: `${url}/links/l/resume`, body: {} }
    },
    expect: practiceOwner,
  },
  'POST /programs/{programId}/links/{linkId}/retire': {
    prepare: async (t, n) => ({ url: `${await programOfSpec(t, n)}/links/l/retire`, body: {} }),
    expect: practiceOwner,
  },
  'GET /programs/{programId}/funnel': {
    prepare: async (t, n) => ({ url: `${await programOfSpec(t, n)}/funnel` }),
    expect: programRead,
  },
  'GET /programs/{programId}/funnel/links.csv': {
    prepare: async (t, n) => ({ url: `${await programOfSpec(t, n)}/funnel/links.csv` }),
    expect: programRead,
  },
  'GET /programs/{programId}/funnel/campaigns.csv': {
    prepare: async (t, n) => ({ url: `${await programOfSpec(t, n)}/funnel/campaigns.csv` }),
    expect: programRead,
  },
  'GET /programs/{programId}/incentives': {
    prepare: async (t, n) => ({ url: `${await programOfSpec(t, n)}/incentives?linkId=l` }),
    expect: programRead,
  },

  'GET /reports/funnel': {
    prepare: async () => ({ url: `/reports/funnel?practiceId=clinic&${PERIOD}` }),
    expect: only({ gp: 200, admin: 200, auditor: 200 }, 404),
  },
  'GET /reports/timings': {
    prepare: async () => ({ url: `/reports/timings?practiceId=clinic&${PERIOD}` }),
    expect: only({ gp: 200, admin: 200, auditor: 200 }, 404),
  },
  'GET /reports/wait-times': {
    prepare: async () => ({ url: `/reports/wait-times?practiceId=clinic&${PERIOD}` }),
    expect: only({ gp: 200, admin: 200, auditor: 200 }, 404),
  },
  'GET /reports/fairness': {
    prepare: async () => ({ url: `/reports/fairness?practiceId=clinic&${PERIOD}` }),
    expect: only({ gp: 200, admin: 200, auditor: 200 }, 404),
  },
  'GET /reports/attribution': {
    prepare: async () => ({ url: `/reports/attribution?practiceId=clinic&${PERIOD}` }),
    expect: only({ gp: 200, admin: 200, auditor: 200 }, 404),
  },
  'GET /reports/programs': {
    prepare: async (t, n) => {
      await programOfSpec(t, n)
      return { url: `/reports/programs?practiceId=spec-a&${PERIOD}` }
    },
    expect: only({ spec: 200, admin: 200, auditor: 200 }, 404),
  },
  'POST /specialties': {
    prepare: async (_t, n) => ({ url: '/specialties', body: { specialtyId: `sp-${n}`, name: 'Specialty' } }),
    expect: catalogAdmin(201),
  },
  'GET /specialties/{specialtyId}': {
    prepare: async () => ({ url: '/specialties/ortho' }),
    expect: everyone(200),
  },
  'POST /specialties/{specialtyId}/categories': {
    prepare: async (_t, n) => ({
      url: '/specialties/ortho/categories',
      body: { categoryId: `c-${n}`, name: `C ${n}` },
    }),
    // Owners or specialists of some practice propose; so may the admin.
    expect: only({ gp: 200, spec: 200, other: 200, admin: 200 }, 403),
  },
  'POST /specialties/{specialtyId}/categories/approve': {
    prepare: async (t, n) => {
      await must(t, 'spec', '/specialties/ortho/categories', { categoryId: `c-${n}`, name: `C ${n}` })
      return { url: '/specialties/ortho/categories/approve', body: { categoryId: `c-${n}` } }
    },
    expect: catalogAdmin(),
  },
  'POST /specialties/{specialtyId}/categories/rename': {
    prepare: async () => ({
      url: '/specialties/ortho/categories/rename',
      body: { categoryId: 'hip', name: 'Hip' },
    }),
    expect: catalogAdmin(),
  },
  'POST /specialties/{specialtyId}/categories/retire': {
    prepare: async (t, n) => {
      await must(t, 'admin', '/specialties/ortho/categories', { categoryId: `r-${n}`, name: `R ${n}` })
      return { url: '/specialties/ortho/categories/retire', body: { categoryId: `r-${n}` } }
    },
    expect: catalogAdmin(),
  },

  'POST /specialties/{specialtyId}/codings/map': {
    prepare: async () => ({
      url: '/specialties/ortho/codings/map',
      body: { system: 'http://snomed.info/sct', code: '72696002', categoryId: 'knee' },
    }),
    expect: catalogAdmin(),
  },
  'POST /specialties/{specialtyId}/codings/unmap': {
    prepare: async () => ({
      url: '/specialties/ortho/codings/unmap',
      body: { system: 'http://loinc.org', code: '11488-4' },
    }),
    expect: catalogAdmin(),
  },

  'GET /audit.csv': {
    prepare: async () => ({ url: '/audit.csv?from=2026-04-01T00:00:00.000Z&to=2026-04-02T00:00:00.000Z' }),
    expect: only({ auditor: 200 }, 403),
  },

  'POST /referrals': {
    prepare: async (t, n) => ({ url: '/referrals', body: t.referral(`new-${n}`) }),
    // Only members of the sending practice may send on its behalf.
    expect: only({ gp: 201 }, 403),
  },
  'GET /referrals/{referralId}': {
    prepare: async (t, n) => ({ url: await referralIn(t, n, 'pending') }),
    expect: referralRead,
  },
  'GET /referrals/{referralId}/history': {
    prepare: async (t, n) => ({ url: `${await referralIn(t, n, 'pending')}/history` }),
    expect: referralRead,
  },
  'GET /referrals/{referralId}/fhir': {
    prepare: async (t, n) => ({ url: `${await referralIn(t, n, 'pending')}/fhir` }),
    expect: referralRead,
  },
  'GET /fhir/ServiceRequest/{referralId}': {
    prepare: async (t, n) => ({
      url: `/fhir/ServiceRequest/${(await referralIn(t, n, 'pending')).slice('/referrals/'.length)}`,
    }),
    expect: referralRead,
  },
  'GET /fhir/Task/{referralId}': {
    prepare: async (t, n) => ({
      url: `/fhir/Task/${(await referralIn(t, n, 'pending')).slice('/referrals/'.length)}`,
    }),
    expect: referralRead,
  },
  'POST /fhir/ServiceRequest': {
    prepare: async (t, n) => ({ url: '/fhir/ServiceRequest', body: fhirBody(t, `fx-${n}`) }),
    // As POST /referrals: only members of the sending practice.
    expect: only({ gp: 201 }, 403),
  },
  'GET /fhir/metadata': { prepare: async () => ({ url: '/fhir/metadata' }), expect: everyone(200) },
  'GET /referrals/{referralId}/routing': {
    prepare: async (t, n) => ({ url: `${await referralIn(t, n, 'pending')}/routing` }),
    expect: only({ gp: 200, spec: 200, admin: 200, auditor: 200 }, 404),
  },
  'POST /referrals/{referralId}/accept': {
    prepare: async (t, n) => ({ url: `${await referralIn(t, n, 'pending')}/accept`, body: {} }),
    expect: recipient,
  },
  'POST /referrals/{referralId}/decline': {
    prepare: async (t, n) => ({
      url: `${await referralIn(t, n, 'pending')}/decline`,
      body: { reasonCode: 'out_of_scope' },
    }),
    expect: recipient,
  },
  'POST /referrals/{referralId}/redirect': {
    prepare: async (t, n) => ({
      url: `${await referralIn(t, n, 'returned')}/redirect`,
      body: { target: { kind: 'direct', practiceId: 'spec-b' } },
    }),
    // The former recipient (`spec`) keeps the non-PHI record, so it is told 403, not 404.
    expect: sender(),
  },
  'POST /referrals/{referralId}/cancel': {
    prepare: async (t, n) => ({
      url: `${await referralIn(t, n, 'pending')}/cancel`,
      body: { reasonCode: 'no_longer_needed' },
    }),
    expect: sender(),
  },
  'POST /referrals/{referralId}/appointment': {
    prepare: async (t, n) => ({
      url: `${await referralIn(t, n, 'accepted')}/appointment`,
      body: { at: '2026-05-02T10:00:00.000Z' },
    }),
    expect: recipient,
  },
  'POST /referrals/{referralId}/appointment/reschedule': {
    prepare: async (t, n) => ({
      url: `${await referralIn(t, n, 'scheduled')}/appointment/reschedule`,
      body: { at: '2026-05-03T10:00:00.000Z' },
    }),
    expect: recipient,
  },
  'POST /referrals/{referralId}/no-show': {
    prepare: async (t, n) => {
      // A no-show is recorded once the appointment has started.
      const at = new Date(Date.parse(t.clock.now()) + 60_000).toISOString()
      const url = await referralIn(t, n, 'scheduled', at)
      t.clock.advance(120_000)
      return { url: `${url}/no-show`, body: {} }
    },
    expect: recipient,
  },
  'POST /referrals/{referralId}/complete': {
    prepare: async (t, n) => ({ url: `${await referralIn(t, n, 'scheduled')}/complete`, body: {} }),
    expect: recipient,
  },
  'POST /referrals/{referralId}/urgency': {
    prepare: async (t, n) => ({
      url: `${await referralIn(t, n, 'pending')}/urgency`,
      body: { urgency: 'urgent' },
    }),
    expect: recipient,
  },
  'POST /referrals/{referralId}/category': {
    prepare: async (t, n) => ({
      url: `${await referralIn(t, n, 'pending')}/category`,
      body: { category: { categoryId: 'hip' } },
    }),
    expect: recipient,
  },
  'POST /referrals/{referralId}/messages': {
    prepare: async (t, n) => ({
      url: `${await referralIn(t, n, 'pending')}/messages`,
      body: { messageId: `m-${n}`, phi: { body: 'Please call the patient.' } },
    }),
    expect: only({ gp: 200, spec: 200, auditor: 403 }, 404),
  },
  'POST /referrals/{referralId}/attachments': {
    prepare: async (t, n) => ({ url: `${await referralIn(t, n, 'pending')}/attachments`, multipart: true }),
    expect: sender(201),
  },
  'GET /referrals/{referralId}/attachments/{attachmentId}': {
    prepare: async (t, n) => {
      const url = await referralIn(t, n, 'pending')
      const body = (
        await t.call('gp', 'POST', `${url}/attachments`, pdfUpload, {
          'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        })
      ).json()
      return { url: `${url}/attachments/${body.attachmentId}` }
    },
    expect: referralRead,
  },
}

describe('authorization matrix (every route × every kind of caller)', () => {
  let shared: RoutesTestApp
  beforeAll(async () => {
    const t = await buildRoutesTestApp()
    shared = t
    // A second approved category, which spec-a also receives (for the category change).
    await t.ok('admin', 'POST', '/specialties/ortho/categories', { categoryId: 'hip', name: 'Hip' })
    const catalog = (await t.ok('admin', 'GET', '/specialties/ortho')).json()
    if (catalog.categories.find((c: { categoryId: string }) => c.categoryId === 'hip')?.status !== 'approved')
      await t.ok('admin', 'POST', '/specialties/ortho/categories/approve', { categoryId: 'hip' })
    await t.ok('spec', 'POST', '/practices/spec-a/specialist-settings', {
      ...SETTINGS,
      categories: [{ categoryId: 'knee' }, { categoryId: 'hip' }],
    })
  })
  afterAll(async () => {
    await shared.app.close()
  })

  it('has a row for every route in the OpenAPI document, and no row without a route', async () => {
    const doc = (await shared.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    )
    expect(documented.length).toBeGreaterThan(35)
    expect([...documented].sort()).toEqual(Object.keys(MATRIX).sort())
  })

  let cell = 0
  for (const [route, row] of Object.entries(MATRIX)) {
    it(`${route}: exact status per caller, never 2xx for an unauthorized one`, async () => {
      const actual: Partial<Record<Caller, number>> = {}
      for (const caller of CALLERS) {
        const t = row.isolated === true ? await buildRoutesTestApp() : shared
        const request = await row.prepare(t, String(cell++))
        const method = route.split(' ')[0] as 'GET' | 'POST'
        const res = request.multipart
          ? await t.call(caller, method, request.url, pdfUpload, {
              'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
            })
          : await t.call(caller, method, request.url, request.body)
        actual[caller] = res.statusCode
        if (res.statusCode >= 400) expect(res.headers['content-type']).toContain('application/problem+json')
        if (row.expect[caller] >= 400) expect(res.statusCode).toBeGreaterThanOrEqual(400)
        if (row.isolated === true) await t.app.close()
      }
      expect(actual).toEqual(row.expect)
    })
  }
})

/**
 * The dashboard's files: routes left out of the OpenAPI document (`hide`), public for every
 * caller, token or not, since they hold no data (the page fetches the reports with the token).
 */
const HIDDEN = [
  '/dashboard',
  '/dashboard/dashboard.js',
  '/dashboard/dashboard.css',
  '/dashboard/chart.umd.min.js',
]

describe('authorization matrix: the dashboard files outside the OpenAPI document', () => {
  let t: RoutesTestApp
  beforeAll(async () => {
    t = await buildRoutesTestApp()
  })
  afterAll(async () => {
    await t.app.close()
  })

  it('are not documented, and every caller (anonymous too) gets them with their type', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    for (const url of HIDDEN) {
      expect(Object.keys(doc.paths)).not.toContain(url)
      for (const caller of CALLERS) {
        const res = await t.call(caller, 'GET', url)
        expect(res.statusCode, `${caller} ${url}`).toBe(200)
        expect(res.headers['content-type']).toMatch(/^text\/(html|javascript|css); charset=utf-8$/)
        expect(res.body.length).toBeGreaterThan(100)
      }
    }
    expect((await t.call('anonymous', 'POST', '/dashboard')).statusCode).toBe(404)
  })
})

/**
 * The public intake pages (`/r/:code`): left out of the OpenAPI document (HTML, not API) and
 * public. A bearer token changes nothing: every caller, an auditor or a broken token included,
 * gets the page and may submit it, and what is recorded is the public intake's, never the caller's.
 */
describe('authorization matrix: the public intake pages outside the OpenAPI document', () => {
  let t: RoutesTestApp
  beforeAll(async () => {
    t = await buildRoutesTestApp()
    await createTestProgram(t)
  })
  afterAll(async () => {
    await t.app.close()
  })

  it('are not documented; every caller gets the page (200) and may submit it (200), as the public intake', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/r/'))).toEqual([])
    const F = INTAKE_FIELDS
    const before = t.domainEvents().length
    for (const caller of CALLERS) {
      const page = await t.call(caller, 'GET', `/r/${CODES.active}`)
      expect(page.statusCode, caller).toBe(200)
      const form = new URLSearchParams({
        token: tokenOf(page.body),
        [F.submittedBy]: 'patient',
        [F.patientGivenName]: 'Matrix',
        [F.patientFamilyName]: caller,
        [F.patientDateOfBirth]: '1980-01-01',
        [F.consentVersion]: '1',
        [F.consentAgreed]: 'yes',
      }).toString()
      const sent = await t.call(caller, 'POST', `/r/${CODES.active}`, form, {
        'content-type': 'application/x-www-form-urlencoded',
      })
      expect(sent.statusCode, caller).toBe(200)
    }
    const broken = await t.app.inject({
      method: 'GET',
      url: `/r/${CODES.active}`,
      headers: { authorization: 'Bearer not-a-token' },
    })
    expect(broken.statusCode).toBe(200)
    // The intake's events and the sends are the public intake's (routing then acts as the router).
    const actors = new Set(
      t
        .domainEvents()
        .slice(before)
        .filter((e) => e.streamId.startsWith('intake-') || e.type === 'ReferralSent')
        .map((e) => JSON.stringify(e.metadata.actor)),
    )
    expect([...actors]).toEqual([JSON.stringify({ kind: 'system', component: 'public-intake' })])
    expect(t.domainEvents().filter((e) => e.type === 'ReferralSent').length).toBe(CALLERS.length)
  })
})
