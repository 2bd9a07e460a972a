import {
  type Actor,
  type CommandId,
  type CommandMeta,
  type ConsentVersion,
  type CorrelationId,
  createEngine,
  createInMemoryEventStore,
  executeCommand,
  type Instant,
  type IntakeCommand,
  type IntakeId,
  incentiveConversion,
  intakeAggregate,
  intakeLinkContext,
  intakeStreamId,
  LinkCode,
  loadAggregate,
  manualClock,
  type PatientId,
  type ProgramCommand,
  type ProgramId,
  programAggregate,
  programStreamId,
  type ReferralId,
  type ReferralLinkId,
  sequentialUuids,
  type UserId,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DEMO, seedDemo } from '../demo.js'
import { buildTestApp } from '../testing.js'
import { registerResourceRoutes } from './resources.js'
import { buildRoutesTestApp, type RoutesTestApp } from './testing-routes.js'

const CANARY_GIVEN = 'Quillaby-Canary'
const CANARY_EMAIL = 'quillaby@example.org'

const programBody = (programId: string, practiceId: string) => ({
  programId,
  practiceId,
  name: 'Knee pain outreach',
  target: { kind: 'direct', practiceId },
})
const CONSENT = {
  consentText: 'I agree to be contacted by the clinic about scheduling.',
  disclosureText: 'Spec A Clinic, north location. General scheduling only.',
}
const RULE = {
  rule: {
    ruleId: 'thanks',
    reward: { kind: 'non_cash_gift', description: 'A branded water bottle' },
    eligibility: ['referral_completed'],
    caps: { perReferrer: 1, perPeriod: { days: 30, max: 10 } },
    disclosureText: 'Rewards are non-cash and never depend on the care you receive.',
  },
}

describe('program routes from the demo dataset', () => {
  it('the demo clinic owner creates a program with two links over HTTP', async () => {
    const clock = manualClock('2026-04-01T09:00:00.000Z' as Instant)
    const store = createInMemoryEventStore({ clock })
    const engine = createEngine({ store, clock, ids: sequentialUuids() })
    expect(await seedDemo(engine)).toBe(true)
    const test = await buildTestApp({
      store,
      resolveActor: (userId, roles) => engine.directory.resolveActor(userId as UserId, roles),
      registerRoutes: registerResourceRoutes({ engine, routing: engine.routing }),
    })
    try {
      const token = await test.token({ userId: DEMO.clinic.owner })
      const post = (url: string, payload: object) =>
        test.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload })
      const clinic = DEMO.clinic.practiceId
      const created = await post('/programs', {
        programId: 'demo-program',
        practiceId: clinic,
        name: 'Lakeside knee programme',
        target: {
          kind: 'pooled',
          regionId: 'north',
          specialtyId: 'orthopedics',
          category: { categoryId: 'knee' },
        },
      })
      expect(created.statusCode, created.body).toBe(201)
      expect(created.headers.location).toBe('/programs/demo-program')
      for (const [linkId, channel] of [
        ['flyer', 'print'],
        ['email', 'email'],
      ]) {
        const res = await post('/programs/demo-program/links', { linkId, attribution: { channel } })
        expect(res.statusCode, res.body).toBe(200)
      }
      const list = await test.app.inject({
        method: 'GET',
        url: `/practices/${clinic}/programs`,
        headers: { authorization: `Bearer ${token}` },
      })
      expect(list.json()).toEqual({
        items: [
          {
            programId: 'demo-program',
            name: 'Lakeside knee programme',
            links: 2,
            activeLinks: 2,
            version: 3,
          },
        ],
      })
      // The clinic's staff member sees the program but may not change it.
      const staff = await test.token({ userId: DEMO.clinic.staff })
      const byStaff = await test.app.inject({
        method: 'POST',
        url: '/programs/demo-program/links/flyer/pause',
        headers: { authorization: `Bearer ${staff}` },
        payload: {},
      })
      expect(byStaff.statusCode).toBe(403)
      expect(byStaff.json().code).toBe('program.forbidden')
    } finally {
      await test.app.close()
    }
  })
})

describe('program routes', () => {
  let t: RoutesTestApp
  beforeAll(async () => {
    t = await buildRoutesTestApp()
  })
  afterAll(async () => {
    await t.app.close()
  })
  let n = 0
  let programId = ''
  afterEach(() => {
    n += 1
  })
  const newProgram = async () => {
    programId = `prog-${n}`
    const res = await t.call('spec', 'POST', '/programs', programBody(programId, 'spec-a'))
    expect(res.statusCode, res.body).toBe(201)
    return `/programs/${programId}`
  }
  const programEvents = () => t.store.snapshot().filter((e) => e.streamId === `program-${programId}`)

  it('creates a program with two links, pauses, resumes and retires; a retired link refuses changes and keeps its history', async () => {
    const url = await newProgram()
    expect((await t.call('spec', 'POST', `${url}/consent-versions`, CONSENT)).statusCode).toBe(200)
    const a = await t.call('spec', 'POST', `${url}/links`, {
      linkId: 'link-a',
      attribution: { channel: 'email', campaign: 'spring', location: 'North', serviceLine: 'knee' },
    })
    expect(a.statusCode, a.body).toBe(200)
    const b = await t.call('spec', 'POST', `${url}/links`, {
      linkId: 'link-b',
      attribution: { channel: 'print', campaign: 'spring', referringPracticeId: 'clinic' },
    })
    const links = b.json().links as { linkId: string; code: string; path: string; status: string }[]
    expect(links.map((l) => [l.linkId, l.status])).toEqual([
      ['link-a', 'active'],
      ['link-b', 'active'],
    ])
    const [codeA, codeB] = links.map((l) => l.code)
    expect(LinkCode.is(codeA) && LinkCode.is(codeB)).toBe(true)
    expect(codeA).not.toBe(codeB)
    expect(links[0]?.path).toBe(`/r/${codeA}`)
    expect(b.json().currentConsentVersion).toBe(1)

    // Retrying a creation answers the same link (same code), writing nothing.
    const eventsBefore = programEvents().length
    const retry = await t.call('spec', 'POST', `${url}/links`, {
      linkId: 'link-a',
      attribution: { channel: 'email', campaign: 'spring', location: 'North', serviceLine: 'knee' },
    })
    expect(retry.statusCode).toBe(200)
    expect(retry.json().links[0].code).toBe(codeA)
    expect(programEvents().length).toBe(eventsBefore)

    expect((await t.call('spec', 'POST', `${url}/links/link-a/pause`, {})).json().links[0].status).toBe(
      'paused',
    )
    expect((await t.call('spec', 'POST', `${url}/links/link-a/resume`, {})).json().links[0].status).toBe(
      'active',
    )
    expect((await t.call('spec', 'POST', `${url}/links/link-b/retire`, {})).json().links[1].status).toBe(
      'retired',
    )
    const afterRetire = programEvents().length
    for (const action of ['pause', 'resume']) {
      const res = await t.call('spec', 'POST', `${url}/links/link-b/${action}`, {})
      expect(res.statusCode).toBe(422)
      expect(res.headers['content-type']).toContain('application/problem+json')
      expect(res.json().code).toBe('program.link_retired')
    }
    expect(programEvents().length).toBe(afterRetire)
    const program = (await t.call('spec', 'GET', url)).json()
    expect(program.links[1]).toMatchObject({ linkId: 'link-b', code: codeB, status: 'retired' })
    expect(programEvents().map((e) => e.type)).toEqual([
      'ProgramCreated',
      'ConsentVersionPublished',
      'ReferralLinkCreated',
      'ReferralLinkCreated',
      'ReferralLinkPaused',
      'ReferralLinkResumed',
      'ReferralLinkRetired',
    ])
  })

  it('Idempotency-Key: a retried creation replays the first answer; the same key with another body is 422', async () => {
    programId = `prog-${n}`
    const key = { 'idempotency-key': `create-${programId}` }
    const first = await t.call('spec', 'POST', '/programs', programBody(programId, 'spec-a'), key)
    expect(first.statusCode).toBe(201)
    const again = await t.call('spec', 'POST', '/programs', programBody(programId, 'spec-a'), key)
    expect(again.statusCode).toBe(201)
    expect(again.headers['idempotent-replayed']).toBe('true')
    expect(again.json()).toEqual(first.json())
    const other = await t.call('spec', 'POST', '/programs', programBody(`${programId}-2`, 'spec-a'), key)
    expect(other.statusCode).toBe(422)
    expect(programEvents().map((e) => e.type)).toEqual(['ProgramCreated'])
    expect(t.store.snapshot().some((e) => e.streamId === `program-${programId}-2`)).toBe(false)
  })

  it('If-Match pins the version: a stale ETag gets 412 and changes nothing', async () => {
    const url = await newProgram()
    const etag = (await t.call('spec', 'GET', url)).headers.etag as string
    await t.ok('spec', 'POST', `${url}/consent-versions`, CONSENT)
    const stale = await t.call(
      'spec',
      'POST',
      `${url}/links`,
      { linkId: 'l', attribution: {} },
      { 'if-match': etag },
    )
    expect(stale.statusCode).toBe(412)
    expect(programEvents().map((e) => e.type)).toEqual(['ProgramCreated', 'ConsentVersionPublished'])
  })

  it('refuses callers who are not owners of the practice, and unauthenticated ones', async () => {
    const url = await newProgram()
    const before = t.domainEvents().length
    // `gp` and `stranger` are outside spec-a: the program does not exist for them.
    for (const who of ['gp', 'stranger'] as const) {
      expect((await t.call(who, 'GET', url)).statusCode).toBe(404)
      expect((await t.call(who, 'POST', `${url}/links`, { linkId: 'x', attribution: {} })).statusCode).toBe(
        404,
      )
      expect(
        (await t.call(who, 'POST', '/programs', programBody(`${programId}-x`, 'spec-a'))).statusCode,
      ).toBe(404)
    }
    // A platform admin sees it but is not an owner: 403; auditors are read-only: 403.
    for (const who of ['admin', 'auditor'] as const) {
      expect((await t.call(who, 'GET', url)).statusCode).toBe(200)
      const res = await t.call(who, 'POST', `${url}/consent-versions`, CONSENT)
      expect(res.statusCode).toBe(403)
      expect(res.headers['content-type']).toContain('application/problem+json')
    }
    for (const [method, path] of [
      ['GET', url],
      ['GET', `${url}/funnel`],
      ['POST', `${url}/links`],
      ['POST', '/programs'],
    ] as const) {
      const res = await t.call(
        'anonymous',
        method,
        path,
        method === 'POST' ? { linkId: 'x', attribution: {} } : undefined,
      )
      expect(res.statusCode).toBe(401)
    }
    expect(t.domainEvents().length).toBe(before)
  })

  it('bad input gets 400 naming the field, never echoing the value, and stores nothing', async () => {
    const url = await newProgram()
    const before = programEvents().length
    const cash = await t.call('spec', 'POST', `${url}/incentive-rules`, {
      rule: { ...RULE.rule, reward: { kind: 'cash', description: 'USD 50 CANARY-CASH' } },
    })
    expect(cash.statusCode).toBe(400)
    expect(cash.json().errors).toContainEqual(expect.objectContaining({ path: 'body.rule.reward.kind' }))
    expect(cash.body).not.toContain('CANARY-CASH')
    const blank = await t.call('spec', 'POST', `${url}/consent-versions`, {
      consentText: '   ',
      disclosureText: 'd',
    })
    expect(blank.statusCode).toBe(400)
    expect(blank.json().errors.map((e: { path: string }) => e.path)).toEqual(['body.consentText'])
    const badCode = await t.call('spec', 'POST', `${url}/links`, { linkId: 'bad id!', attribution: {} })
    expect(badCode.statusCode).toBe(400)
    expect(badCode.json().detail).toBe('The request body is invalid.')
    expect(badCode.body).not.toContain('bad id!')
    const badTarget = await t.call('spec', 'POST', '/programs', {
      ...programBody('prog-bad', 'spec-a'),
      target: { kind: 'anywhere' },
    })
    expect(badTarget.statusCode).toBe(400)
    expect(programEvents().length).toBe(before)
    expect(t.store.snapshot().some((e) => e.streamId === 'program-prog-bad')).toBe(false)
  })

  describe('funnel and incentives', () => {
    const system: Actor = { kind: 'system', component: 'programs-test' }
    let seq = 0
    const meta = (actor: Actor): CommandMeta => ({
      commandId: unsafeId<CommandId>(`pt-cmd-${seq++}`),
      actor,
      now: t.clock.now(),
      correlationId: unsafeId<CorrelationId>('programs-test'),
    })
    const deps = () => ({ store: t.engine.store, ids: t.engine.ids })
    const programState = async () => {
      const loaded = await loadAggregate(programAggregate, t.store, programStreamId(programId as ProgramId))()
      if (E.isLeft(loaded)) throw new Error('program load failed')
      return loaded.right.state
    }
    const intake = async (
      intakeId: string,
      payload: Omit<IntakeCommand, 'meta' | 'context'>,
      withLink?: string,
    ) => {
      const context =
        withLink === undefined
          ? {}
          : { context: { link: intakeLinkContext(await programState(), withLink as ReferralLinkId) } }
      const r = await executeCommand(intakeAggregate(), deps(), intakeStreamId(intakeId as IntakeId), {
        ...payload,
        meta: meta(system),
        ...context,
      } as IntakeCommand)()
      if (E.isLeft(r)) throw new Error(`intake command failed: ${JSON.stringify(r.left)}`)
      t.clock.advance(60_000)
    }
    const open = (intakeId: string, linkId: string) =>
      intake(intakeId, { type: 'OpenReferralLink', data: { intakeId, linkId } } as never, linkId)
    const submit = (intakeId: string, linkId: string) =>
      intake(
        intakeId,
        {
          type: 'SubmitIntake',
          data: {
            patientId: unsafeId<PatientId>(`pat-${intakeId}`),
            submittedBy: { kind: 'patient' },
            consentVersion: 1 as ConsentVersion,
            communication: { email: true, sms: false, phone: false, mail: false },
            phi: { patient: { givenName: CANARY_GIVEN, familyName: 'Example', email: CANARY_EMAIL } },
          },
        } as never,
        linkId,
      )
    const complete = async (intakeId: string) => {
      await intake(intakeId, {
        type: 'RecordIntakeReferralSent',
        data: { referralId: unsafeId<ReferralId>(`ref-${intakeId}`) },
      } as never)
      await intake(intakeId, {
        type: 'RecordIntakeAppointmentScheduled',
        data: { appointmentAt: '2026-06-01T10:00:00.000Z' },
      } as never)
      await intake(intakeId, { type: 'RecordIntakeAppointmentCompleted', data: {} } as never)
    }
    const decide = async (intakeId: string) => {
      const loaded = await loadAggregate(intakeAggregate(), t.store, intakeStreamId(intakeId as IntakeId))()
      if (E.isLeft(loaded)) throw new Error('intake load failed')
      const r = await executeCommand(programAggregate, deps(), programStreamId(programId as ProgramId), {
        type: 'DecideIncentive',
        data: { ruleId: 'thanks', intakeId },
        meta: meta(system),
        context: { conversion: incentiveConversion(loaded.right.state, false) },
      } as ProgramCommand)()
      if (E.isLeft(r)) throw new Error('decision failed')
    }

    it('reads the funnel per link and campaign (JSON and CSV) and the incentive decisions, without PHI or per-person ids', async () => {
      const url = await newProgram()
      await t.ok('spec', 'POST', `${url}/consent-versions`, CONSENT)
      await t.ok('spec', 'POST', `${url}/incentive-rules`, RULE)
      await t.ok('spec', 'POST', `${url}/links`, {
        linkId: 'link-a',
        attribution: { channel: 'email', campaign: 'spring', referringPersonId: 'person-7731' },
      })
      await t.ok('spec', 'POST', `${url}/links`, { linkId: 'link-b', attribution: { channel: 'print' } })
      await t.ok('spec', 'POST', `${url}/links`, { linkId: 'link-c', attribution: { campaign: 'spring' } })
      const p = programId
      await open(`${p}-i1`, 'link-a')
      await open(`${p}-i2`, 'link-a')
      await open(`${p}-i3`, 'link-b')
      await submit(`${p}-i1`, 'link-a')
      await complete(`${p}-i1`)
      await submit(`${p}-i2`, 'link-a')
      await decide(`${p}-i1`)
      await decide(`${p}-i2`)

      const funnel = await t.call('spec', 'GET', `${url}/funnel`)
      expect(funnel.statusCode, funnel.body).toBe(200)
      const body = funnel.json()
      const counts = (l: { stages: Record<string, { count: number }> }) =>
        Object.fromEntries(Object.entries(l.stages).map(([k, v]) => [k, v.count]))
      expect(body.links.map((l: { linkId: string }) => l.linkId)).toEqual(['link-a', 'link-b', 'link-c'])
      expect(counts(body.links[0])).toEqual({
        opened: 2,
        submitted: 2,
        referralSent: 1,
        scheduled: 1,
        completed: 1,
        noShow: 0,
      })
      expect(counts(body.links[1])).toEqual({
        opened: 1,
        submitted: 0,
        referralSent: 0,
        scheduled: 0,
        completed: 0,
        noShow: 0,
      })
      expect(body.links[2].stages.opened).toEqual({ count: 0, firstAt: null, lastAt: null })
      expect(body.links[0].attribution).toEqual({ channel: 'email', campaign: 'spring' })
      expect(body.links[0].stages.opened.firstAt).toBe('2026-04-01T09:00:00.000Z')
      expect(
        body.campaigns.map((c: { campaign: string | null; links: number }) => [c.campaign, c.links]),
      ).toEqual([
        ['spring', 1],
        [null, 1],
      ])

      const one = (await t.call('spec', 'GET', `${url}/funnel?linkId=link-b`)).json()
      expect(one.links.map((l: { linkId: string }) => l.linkId)).toEqual(['link-b'])
      expect((await t.call('spec', 'GET', `${url}/funnel?linkId=nope`)).statusCode).toBe(404)

      const csv = await t.call('spec', 'GET', `${url}/funnel/links.csv`)
      expect(csv.statusCode).toBe(200)
      expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8')
      const rows = csv.body.trimEnd().split('\r\n')
      expect(
        rows[0]?.startsWith(
          'program_id,link_id,channel,campaign,location,service_line,referring_practice_id,opened,',
        ),
      ).toBe(true)
      expect(rows.slice(1).map((r) => r.split(',').slice(0, 4).join(','))).toEqual([
        `${p},link-a,email,spring`,
        `${p},link-b,print,`,
        `${p},link-c,,spring`,
      ])
      const campaigns = await t.call('spec', 'GET', `${url}/funnel/campaigns.csv`)
      expect(campaigns.body.split('\r\n')[1]).toMatch(new RegExp(`^${p},spring,1,2,`))

      const incentives = await t.call('spec', 'GET', `${url}/incentives`)
      expect(incentives.statusCode, incentives.body).toBe(200)
      const decisions = incentives.json()
      expect(decisions.links).toEqual([
        { linkId: 'link-a', awarded: 1, refused: 1 },
        { linkId: 'link-b', awarded: 0, refused: 0 },
        { linkId: 'link-c', awarded: 0, refused: 0 },
      ])
      expect(
        decisions.decisions.map((d: { outcome: string; reason: string; referrerKind: string }) => [
          d.outcome,
          d.reason,
          d.referrerKind,
        ]),
      ).toEqual([
        ['awarded', 'eligible', 'person'],
        ['refused', 'referral_not_completed', 'person'],
      ])
      expect(decisions.decisions[0].rule).toEqual(RULE.rule)

      // No PHI and nothing per person in any of these outputs.
      for (const res of [funnel, csv, campaigns, incentives]) {
        for (const secret of [
          CANARY_GIVEN,
          CANARY_EMAIL,
          'person-7731',
          `${p}-i1`,
          `pat-${p}-i1`,
          `ref-${p}-i1`,
        ])
          expect(res.body).not.toContain(secret)
      }
      // Members of the practice may read; outsiders may not learn it exists.
      expect((await t.call('gp', 'GET', `${url}/funnel`)).statusCode).toBe(404)
      expect((await t.call('auditor', 'GET', `${url}/incentives`)).statusCode).toBe(200)
    })
  })
})
