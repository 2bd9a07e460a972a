import {
  createEngine,
  createInMemoryEventStore,
  type Instant,
  manualClock,
  sequentialUuids,
  type UserId,
} from '@referrals/core'
import { createHmacBlindIndex } from '@referrals/crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { buildTestApp, type TestApp } from '../testing.js'
import { registerResourceRoutes } from './resources.js'

const CANARY_NAME = 'Zebulon-Canary'
const CANARY_REASON = 'canary-reason-knee-7731'

describe('resource routes (API tests on the in-memory engine)', () => {
  let current: TestApp | undefined
  afterEach(async () => {
    await current?.app.close()
    current = undefined
  })

  const setup = async () => {
    const clock = manualClock('2026-04-01T09:00:00.000Z' as Instant)
    const store = createInMemoryEventStore({ clock })
    const engine = createEngine({
      store,
      clock,
      ids: sequentialUuids(),
      blindIndex: createHmacBlindIndex({ key: new Uint8Array(32).fill(7) }),
    })
    const routing = engine.routing
    current = await buildTestApp({
      store,
      resolveActor: (userId, roles) => engine.directory.resolveActor(userId as UserId, roles),
      registerRoutes: registerResourceRoutes({ engine, routing }),
    })
    const app = current.app
    const tokens = {
      admin: await current.token({ userId: 'admin', roles: ['admin'] }),
      auditor: await current.token({ userId: 'auditor', roles: ['auditor'] }),
      gp: await current.token({ userId: 'dr-gp' }),
      spec: await current.token({ userId: 'dr-spec' }),
      stranger: await current.token({ userId: 'stranger' }),
    }
    type Who = keyof typeof tokens
    const call = (
      who: Who,
      method: 'GET' | 'POST',
      url: string,
      payload?: unknown,
      headers: Record<string, string> = {},
    ) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${tokens[who]}`, ...headers },
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      })
    const ok = async (who: Who, method: 'GET' | 'POST', url: string, payload?: unknown) => {
      const res = await call(who, method, url, payload)
      if (res.statusCode >= 300) throw new Error(`${method} ${url} -> ${res.statusCode} ${res.body}`)
      return res
    }
    await ok('admin', 'POST', '/specialties', { specialtyId: 'ortho', name: 'Orthopedics' })
    await ok('admin', 'POST', '/specialties/ortho/categories', { categoryId: 'knee', name: 'Knee' })
    await ok('gp', 'POST', '/practices', { practiceId: 'clinic', name: 'Clinic', kind: 'clinic' })
    await ok('spec', 'POST', '/practices', { practiceId: 'spec-a', name: 'Spec A', kind: 'specialist' })
    await ok('spec', 'POST', '/practices/spec-a/specialist-settings', {
      specialtyId: 'ortho',
      regions: ['north'],
      categories: [{ categoryId: 'knee' }],
      fte: 1,
      insuranceNetworks: [],
      preferredProviderListed: true,
    })
    await ok('admin', 'POST', '/practices/spec-a/verify', {})
    const referral = (referralId: string) => ({
      referralId,
      senderPracticeId: 'clinic',
      patientId: `pat-${referralId}`,
      phi: {
        patient: {
          givenName: CANARY_NAME,
          familyName: 'Example',
          dateOfBirth: '1975-06-01',
          healthNumber: 'HN-CANARY-1',
        },
        reason: CANARY_REASON,
      },
      specialtyId: 'ortho',
      category: { categoryId: 'knee' },
      regionId: 'north',
      urgency: 'routine',
      target: { kind: 'pooled' },
    })
    return { app, store, engine, clock, call, ok, referral, logs: current.logs }
  }

  it('sends a choose-for-me referral, routes it, and shows PHI only to sender and recipient', async () => {
    const { call, ok, referral } = await setup()
    const sent = await call('gp', 'POST', '/referrals', referral('r-1'))
    expect(sent.statusCode).toBe(201)
    expect(sent.headers.location).toBe('/referrals/r-1')
    expect(sent.json()).toMatchObject({
      status: 'pending',
      recipientPracticeId: 'spec-a',
      fhirTaskStatus: 'received',
    })
    expect(sent.body).not.toContain(CANARY_NAME)

    const bySender = await ok('gp', 'GET', '/referrals/r-1')
    expect(bySender.json()).toMatchObject({
      phiVisible: true,
      patient: { givenName: CANARY_NAME },
      reason: CANARY_REASON,
    })
    expect(bySender.headers.etag).toBe('W/"2"')
    expect(bySender.headers['cache-control']).toBe('no-store')
    const byRecipient = await ok('spec', 'GET', '/referrals/r-1')
    expect(byRecipient.json().phiVisible).toBe(true)
    const byStranger = await call('stranger', 'GET', '/referrals/r-1')
    expect(byStranger.statusCode).toBe(404)
    expect(byStranger.body).not.toContain(CANARY_NAME)
  })

  it('records exactly one audit event per PHI read, with who, role, referral, patient, purpose and outcome', async () => {
    const { ok, call, store, referral } = await setup()
    await ok('gp', 'POST', '/referrals', referral('r-1'))
    const before = store.snapshot().filter((e) => e.type === 'PhiAccessed').length
    await call('gp', 'GET', '/referrals/r-1', undefined, { 'x-purpose-of-use': 'operations' })
    await call('stranger', 'GET', '/referrals/r-1')
    const audits = store
      .snapshot()
      .filter((e) => e.type === 'PhiAccessed')
      .slice(before)
    expect(audits).toHaveLength(2)
    expect(audits[0]?.data).toMatchObject({
      userId: 'dr-gp',
      role: 'owner',
      practiceId: 'clinic',
      referralId: 'r-1',
      patientId: 'clinic:pat-r-1',
      purpose: 'operations',
      outcome: 'granted',
      channel: 'api',
      resource: '/referrals/:referralId',
    })
    expect(audits[1]?.data).toMatchObject({ userId: 'stranger', outcome: 'denied' })
  })

  it('rejects a stale If-Match with 412 and applies a fresh one', async () => {
    const { call, ok, referral } = await setup()
    await ok('gp', 'POST', '/referrals', referral('r-1'))
    const stale = await call('spec', 'POST', '/referrals/r-1/accept', {}, { 'if-match': 'W/"1"' })
    expect(stale.statusCode).toBe(412)
    expect(stale.headers['content-type']).toContain('application/problem+json')
    const fresh = await call('spec', 'POST', '/referrals/r-1/accept', {}, { 'if-match': 'W/"99", W/"2"' })
    expect(fresh.statusCode).toBe(200)
    expect(fresh.json().status).toBe('accepted')
  })

  it('answers domain rule violations with 422/403 problems and changes nothing', async () => {
    const { call, ok, referral, store } = await setup()
    await ok('gp', 'POST', '/referrals', referral('r-1'))
    const count = store.snapshot().length
    const notRecipient = await call('gp', 'POST', '/referrals/r-1/accept', {})
    expect(notRecipient.statusCode).toBe(403)
    const bad = await call('spec', 'POST', '/referrals/r-1/decline', { reasonCode: 'because' })
    expect(bad.statusCode).toBe(400)
    expect(bad.body).not.toContain('because')
    expect(store.snapshot().filter((e) => !e.streamId.startsWith('audit-'))).toHaveLength(count)
  })

  it('replays a POST with the same Idempotency-Key instead of sending twice', async () => {
    const { call, store, referral } = await setup()
    const first = await call('gp', 'POST', '/referrals', referral('r-1'), { 'idempotency-key': 'k-1' })
    const again = await call('gp', 'POST', '/referrals', referral('r-1'), { 'idempotency-key': 'k-1' })
    expect(again.statusCode).toBe(first.statusCode)
    expect(again.json()).toEqual(first.json())
    expect(store.snapshot().filter((e) => e.type === 'ReferralSent')).toHaveLength(1)
    const different = await call('gp', 'POST', '/referrals', referral('r-2'), { 'idempotency-key': 'k-1' })
    expect(different.statusCode).toBe(422)
  })

  it('lists, exports CSV without PHI, explains routing, shows history and as-of state', async () => {
    const { ok, call, referral, clock } = await setup()
    await ok('gp', 'POST', '/referrals', referral('r-1'))
    const beforeAccept = clock.now()
    clock.advance(3_600_000)
    await ok('spec', 'POST', '/referrals/r-1/accept', {})
    const list = await ok('gp', 'GET', '/practices/clinic/referrals?box=sent&status=accepted')
    expect(list.json().items.map((i: { referralId: string }) => i.referralId)).toEqual(['r-1'])
    expect((await call('stranger', 'GET', '/practices/clinic/referrals?box=sent')).statusCode).toBe(404)
    // Error paths name the field as the client wrote it (no intersection/union member index).
    const badBox = await call('gp', 'GET', '/practices/clinic/referrals?box=nope')
    expect(badBox.statusCode).toBe(400)
    expect(badBox.json().errors.map((e: { path: string }) => e.path)).toEqual(['query.box'])
    const csv = await ok('gp', 'GET', '/practices/clinic/referrals.csv?box=sent')
    expect(csv.headers['content-type']).toContain('text/csv')
    expect(csv.body.split('\r\n')[1]).toContain('r-1,accepted,accepted,routine')
    expect(csv.body).not.toContain(CANARY_NAME)
    const routing = await ok('gp', 'GET', '/referrals/r-1/routing')
    expect(routing.json().decisions).toBe(1)
    expect(routing.json().lines.join('\n')).toContain('spec-a')
    // The numbers are explained in words: the position is the pool's, not this referral's count,
    // and each candidate's lag reads as behind/ahead of/at its FTE share (exact values kept).
    await ok('gp', 'POST', '/referrals', referral('r-2'))
    const second = await ok('gp', 'GET', '/referrals/r-2/routing')
    expect(second.json().decisions).toBe(1)
    const text: string = second.json().lines.join('\n')
    expect(text).toContain("pool decision #2 (the pool's 2nd routing decision)")
    expect(text).toMatch(/(behind|ahead of|exactly at) its FTE share/)
    expect(text).toMatch(/exact: virtual start [0-9/]+, finish [0-9/]+, lag -?[0-9/]+/)
    const history = await ok('spec', 'GET', '/referrals/r-1/history')
    expect(history.json().entries.map((e: { type: string }) => e.type)).toEqual([
      'ReferralSent',
      'ReferralDelivered',
      'ReferralAccepted',
    ])
    const asOf = await ok('gp', 'GET', `/referrals/r-1?asOf=${beforeAccept}`)
    // Any RFC 3339 spelling of the same instant reads the same state (issue 13).
    const offset = new Date(Date.parse(beforeAccept) + 3_600_000).toISOString().replace('Z', '+01:00')
    for (const spelling of [`${beforeAccept.slice(0, 23)}000000Z`, offset]) {
      const same = await ok('gp', 'GET', `/referrals/r-1?asOf=${encodeURIComponent(spelling)}`)
      expect(same.json()).toEqual(asOf.json())
    }
    expect(asOf.json().referral.status).toBe('pending')
  })

  it('never writes PHI to the logs', async () => {
    const { ok, call, referral, logs } = await setup()
    await ok('gp', 'POST', '/referrals', referral('r-1'))
    await ok('gp', 'GET', '/referrals/r-1')
    await call('gp', 'GET', `/practices/clinic/referrals?box=sent&patient=${CANARY_NAME}`)
    await call('gp', 'POST', '/referrals', { ...referral('r-2'), urgency: CANARY_NAME })
    expect(logs()).not.toContain(CANARY_NAME)
    expect(logs()).not.toContain(CANARY_REASON)
  })

  it('documents every resource route in the OpenAPI document from the codecs', async () => {
    const { app } = await setup()
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
    for (const path of [
      '/referrals',
      '/referrals/{referralId}',
      '/referrals/{referralId}/decline',
      '/practices/{practiceId}/referrals',
    ]) {
      expect(Object.keys(doc.paths)).toContain(path)
    }
    const body = doc.paths['/referrals'].post.requestBody.content['application/json'].schema
    expect(body).toEqual({ $ref: '#/components/schemas/SendReferralRequest' })
    expect(Object.keys(doc.components.schemas.SendReferralRequest.properties)).toContain('urgency')
  })

  it('does not give a former recipient PHI back through asOf, nor patient search over what it declined', async () => {
    const { ok, call, referral, clock, store } = await setup()
    await ok('gp', 'POST', '/referrals', referral('r-1'))
    const whileHeld = clock.now()
    clock.advance(60_000)
    await ok('spec', 'POST', '/referrals/r-1/decline', { reasonCode: 'capacity' })
    const now = await ok('spec', 'GET', '/referrals/r-1')
    expect(now.json().phiVisible).toBe(false)
    expect(now.json().referral.recipientPracticeId).toBeNull()
    const history = await ok('spec', 'GET', '/referrals/r-1/history')
    // Up to its own decline; not what happened to the referral afterwards (it was returned).
    expect(history.json().entries.map((e: { type: string }) => e.type)).toEqual([
      'ReferralSent',
      'ReferralDelivered',
      'ReferralDeclined',
    ])
    const senderHistory = await ok('gp', 'GET', '/referrals/r-1/history')
    expect(senderHistory.json().entries.map((e: { type: string }) => e.type)).toContain('ReferralReturned')
    const then = await ok('spec', 'GET', `/referrals/r-1?asOf=${whileHeld}`)
    expect(then.json().phiVisible).toBe(false)
    expect(then.body).not.toContain(CANARY_NAME)
    // The sender still finds the patient; the former recipient's search matches nothing.
    const bySender = await ok('gp', 'GET', '/practices/clinic/referrals?box=sent&patient=HN-CANARY-1')
    expect(bySender.json().items.map((i: { referralId: string }) => i.referralId)).toEqual(['r-1'])
    const before = store.snapshot().filter((e) => e.type === 'PhiAccessed').length
    const byFormer = await call('spec', 'GET', '/practices/spec-a/referrals?box=received&patient=HN-CANARY-1')
    expect(byFormer.json().items).toEqual([])
    const searches = store
      .snapshot()
      .filter((e) => e.type === 'PhiAccessed')
      .slice(before)
    expect(searches).toHaveLength(1)
    expect(searches[0]?.data).toMatchObject({
      userId: 'dr-spec',
      practiceId: 'spec-a',
      referralId: null,
      outcome: 'granted',
    })
  })

  it('keeps the coding map: admins map and unmap SNOMED CT / LOINC codes, the specialty lists them, bad codes change nothing', async () => {
    const { call, ok } = await setup()
    const mapped = await ok('admin', 'POST', '/specialties/ortho/codings/map', {
      system: 'http://snomed.info/sct',
      code: '72696002',
      categoryId: 'knee',
    })
    expect(mapped.json().codings).toEqual([
      { system: 'http://snomed.info/sct', code: '72696002', categoryId: 'knee' },
    ])
    const before = (await ok('admin', 'GET', '/specialties/ortho')).json()
    for (const [who, body, status] of [
      ['spec', { system: 'http://loinc.org', code: '11488-4', categoryId: 'knee' }, 403],
      ['admin', { system: 'http://loinc.org', code: '72696002', categoryId: 'knee' }, 422],
      ['admin', { system: 'http://snomed.info/sct', code: '239873007', categoryId: 'nope' }, 422],
      ['admin', { system: 'urn:other', code: '1', categoryId: 'knee' }, 400],
    ] as const) {
      const res = await call(who, 'POST', '/specialties/ortho/codings/map', body)
      expect([res.statusCode, res.headers['content-type']]).toEqual([
        status,
        'application/problem+json; charset=utf-8',
      ])
    }
    expect((await ok('admin', 'GET', '/specialties/ortho')).json()).toEqual(before)
    const unmapped = await ok('admin', 'POST', '/specialties/ortho/codings/unmap', {
      system: 'http://snomed.info/sct',
      code: '72696002',
    })
    expect(unmapped.json().codings).toEqual([])
  })

  it('honours If-Match on catalog changes (412 when stale)', async () => {
    const { call, ok } = await setup()
    const etag = String((await ok('admin', 'GET', '/specialties/ortho')).headers.etag)
    await ok('admin', 'POST', '/specialties/ortho/categories', { categoryId: 'hip', name: 'Hip' })
    const stale = await call(
      'admin',
      'POST',
      '/specialties/ortho/categories/rename',
      { categoryId: 'knee', name: 'Knees' },
      { 'if-match': etag },
    )
    expect(stale.statusCode).toBe(412)
    const fresh = String((await ok('admin', 'GET', '/specialties/ortho')).headers.etag)
    const renamed = await call(
      'admin',
      'POST',
      '/specialties/ortho/categories/rename',
      { categoryId: 'knee', name: 'Knees' },
      { 'if-match': fresh },
    )
    expect(renamed.statusCode).toBe(200)
  })
})
