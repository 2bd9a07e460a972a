import {
  type Actor,
  type CommandId,
  type CommandMeta,
  type ConsentVersion,
  type CorrelationId,
  executeCommand,
  type IntakeCommand,
  type IntakeId,
  incentiveConversion,
  intakeAggregate,
  intakeLinkContext,
  intakeStreamId,
  loadAggregate,
  type PatientId,
  type ProgramCommand,
  type ProgramId,
  programAggregate,
  programStreamId,
  type ReferralId,
  type ReferralLinkId,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRoutesTestApp, type RoutesTestApp } from './testing-routes.js'

const CANARY_GIVEN = 'Quorbly-Canary'
const PERSON = 'person-5521'

/**
 * `GET /reports/programs` over a cohort written through the program and intake commands: one
 * intake opened before the period (never counted), six intakes of link-a and one of link-b in it.
 * The expected figures are counted by hand from the script below.
 */
describe('GET /reports/programs', () => {
  let t: RoutesTestApp
  let from: string
  let to: string
  const programId = 'prog-report'
  const url = `/programs/${programId}`
  const system: Actor = { kind: 'system', component: 'program-report-test' }
  let seq = 0
  const meta = (): CommandMeta => ({
    commandId: unsafeId<CommandId>(`pr-cmd-${seq++}`),
    actor: system,
    now: t.clock.now(),
    correlationId: unsafeId<CorrelationId>('program-report-test'),
  })
  const deps = () => ({ store: t.engine.store, ids: t.engine.ids })
  const programState = async () => {
    const loaded = await loadAggregate(programAggregate, t.store, programStreamId(programId as ProgramId))()
    if (E.isLeft(loaded)) throw new Error('program load failed')
    return loaded.right.state
  }
  const intake = async (intakeId: string, payload: object, withLink?: string) => {
    const context =
      withLink === undefined
        ? {}
        : { context: { link: intakeLinkContext(await programState(), withLink as ReferralLinkId) } }
    const r = await executeCommand(intakeAggregate(), deps(), intakeStreamId(intakeId as IntakeId), {
      ...payload,
      meta: meta(),
      ...context,
    } as IntakeCommand)()
    if (E.isLeft(r)) throw new Error(`intake command failed: ${r.left.message}`)
    t.clock.advance(60_000)
  }
  const open = (id: string, linkId: string) =>
    intake(id, { type: 'OpenReferralLink', data: { intakeId: id, linkId } }, linkId)
  const submit = (id: string, linkId: string) =>
    intake(
      id,
      {
        type: 'SubmitIntake',
        data: {
          patientId: unsafeId<PatientId>(`pat-${id}`),
          submittedBy: { kind: 'patient' },
          consentVersion: 1 as ConsentVersion,
          communication: { email: false, sms: false, phone: true, mail: false },
          phi: { patient: { givenName: CANARY_GIVEN, familyName: 'Example', phone: '+15550100' } },
        },
      },
      linkId,
    )
  const book = async (id: string) => {
    await intake(id, {
      type: 'RecordIntakeReferralSent',
      data: { referralId: unsafeId<ReferralId>(`ref-${id}`) },
    })
    await intake(id, {
      type: 'RecordIntakeAppointmentScheduled',
      data: { appointmentAt: '2026-06-01T10:00:00.000Z' },
    })
  }
  const decide = async (id: string) => {
    const loaded = await loadAggregate(intakeAggregate(), t.store, intakeStreamId(id as IntakeId))()
    if (E.isLeft(loaded)) throw new Error('intake load failed')
    const r = await executeCommand(programAggregate, deps(), programStreamId(programId as ProgramId), {
      type: 'DecideIncentive',
      data: { ruleId: 'thanks', intakeId: id },
      meta: meta(),
      context: { conversion: incentiveConversion(loaded.right.state, false) },
    } as ProgramCommand)()
    if (E.isLeft(r)) throw new Error('decision failed')
  }

  beforeAll(async () => {
    t = await buildRoutesTestApp()
    await t.ok('spec', 'POST', '/programs', {
      programId,
      practiceId: 'spec-a',
      name: 'Report program',
      target: { kind: 'direct', practiceId: 'spec-a' },
    })
    await t.ok('spec', 'POST', `${url}/consent-versions`, { consentText: 'c', disclosureText: 'd' })
    await t.ok('spec', 'POST', `${url}/incentive-rules`, {
      rule: {
        ruleId: 'thanks',
        reward: { kind: 'non_cash_gift', description: 'A water bottle' },
        eligibility: ['referral_completed'],
        caps: { perReferrer: 1, perPeriod: { days: 30, max: 10 } },
        disclosureText: 'Rewards are non-cash.',
      },
    })
    await t.ok('spec', 'POST', `${url}/links`, {
      linkId: 'link-a',
      attribution: { channel: 'email', campaign: 'spring', referringPersonId: PERSON },
    })
    await t.ok('spec', 'POST', `${url}/links`, {
      linkId: 'link-b',
      attribution: { channel: 'print', campaign: 'spring' },
    })
    await t.ok('spec', 'POST', `${url}/links`, { linkId: 'link-c', attribution: { channel: 'radio' } })
    // Before the period: opened, submitted, completed and awarded, never in the report.
    await open('early', 'link-a')
    await submit('early', 'link-a')
    t.clock.advance(86_400_000)
    from = t.clock.now()
    for (const i of [1, 2, 3, 4, 5, 6]) await open(`a${i}`, 'link-a')
    await open('b1', 'link-b')
    for (const i of [1, 2, 3, 4, 5]) await submit(`a${i}`, 'link-a')
    for (const i of [1, 2, 3]) await book(`a${i}`)
    await intake('a1', { type: 'RecordIntakeAppointmentCompleted', data: {} })
    await intake('a2', { type: 'RecordIntakeAppointmentCompleted', data: {} })
    await intake('a3', { type: 'RecordIntakeNoShow', data: {} })
    // Per-referrer cap 1: a1 is awarded, a2 refused (same referring person).
    await decide('a1')
    await decide('a2')
    t.clock.advance(3_600_000)
    to = t.clock.now()
  })
  afterAll(async () => {
    await t.app.close()
  })

  const zero = {
    opened: 0,
    submitted: 0,
    referralSent: 0,
    scheduled: 0,
    completed: 0,
    noShows: 0,
    incentivesAwarded: 0,
    incentivesRefused: 0,
  }
  const linkA = {
    opened: 6,
    submitted: 5,
    referralSent: 3,
    scheduled: 3,
    completed: 2,
    noShows: 1,
    incentivesAwarded: 1,
    incentivesRefused: 1,
  }
  const q = () => `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`

  it('shows the program, each campaign and each link to the practice’s members, without suppression', async () => {
    const res = await t.call('spec', 'GET', `/reports/programs?practiceId=spec-a&${q()}`)
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json()
    expect(body).toMatchObject({ report: 'programs', practiceId: 'spec-a', programId: null, from, to })
    expect(body.cells).toEqual([
      {
        level: 'program',
        group: { programId },
        intakes: 7,
        suppressed: false,
        figures: { ...linkA, opened: 7 },
      },
      {
        level: 'campaign',
        group: { programId, campaign: 'spring' },
        intakes: 7,
        suppressed: false,
        figures: { ...linkA, opened: 7 },
      },
      {
        level: 'campaign',
        group: { programId, campaign: '(none)' },
        intakes: 0,
        suppressed: false,
        figures: zero,
      },
      {
        level: 'link',
        group: { programId, campaign: 'spring', linkId: 'link-a', channel: 'email' },
        intakes: 6,
        suppressed: false,
        figures: linkA,
      },
      {
        level: 'link',
        group: { programId, campaign: 'spring', linkId: 'link-b', channel: 'print' },
        intakes: 1,
        suppressed: false,
        figures: { ...zero, opened: 1 },
      },
      {
        level: 'link',
        group: { programId, campaign: '(none)', linkId: 'link-c', channel: 'radio' },
        intakes: 0,
        suppressed: false,
        figures: zero,
      },
    ])
    expect(res.body).not.toContain(CANARY_GIVEN)
    expect(res.body).not.toContain(PERSON)
    expect(res.body).not.toContain('pat-')
  })

  it('suppresses cells of fewer than 5 intakes for callers outside the practice (admins, auditors)', async () => {
    for (const who of ['admin', 'auditor'] as const) {
      const res = await t.call(who, 'GET', `/reports/programs?${q()}`)
      expect(res.statusCode, res.body).toBe(200)
      const cells = res.json().cells as {
        level: string
        group: Record<string, string>
        intakes: unknown
        suppressed: boolean
        figures: Record<string, unknown>
      }[]
      const linkB = cells.find((c) => c.group.linkId === 'link-b')
      expect(linkB).toEqual({
        level: 'link',
        group: { programId, campaign: 'spring', linkId: 'link-b', channel: 'print' },
        intakes: '< 5',
        suppressed: true,
        figures: Object.fromEntries(Object.keys(zero).map((k) => [k, '< 5'])),
      })
      expect(cells.find((c) => c.group.linkId === 'link-a')?.figures).toEqual(linkA)
    }
  })

  it('narrows to one program, exports CSV, and refuses callers and queries it should', async () => {
    const csv = await t.call(
      'spec',
      'GET',
      `/reports/programs?practiceId=spec-a&programId=${programId}&format=csv&${q()}`,
    )
    expect(csv.statusCode, csv.body).toBe(200)
    expect(csv.headers['content-type']).toContain('text/csv')
    const lines = csv.body.trimEnd().split('\r\n')
    expect(lines[0]).toBe(
      'level,group.programId,intakes,suppressed,figures.opened,figures.submitted,figures.referralSent,figures.scheduled,figures.completed,figures.noShows,figures.incentivesAwarded,figures.incentivesRefused,group.campaign,group.linkId,group.channel',
    )
    expect(lines).toContain(`link,${programId},6,false,6,5,3,3,2,1,1,1,spring,link-a,email`)
    expect(lines).toHaveLength(7)

    expect((await t.call('gp', 'GET', `/reports/programs?practiceId=spec-a&${q()}`)).statusCode).toBe(404)
    expect((await t.call('spec', 'GET', `/reports/programs?${q()}`)).statusCode).toBe(403)
    expect((await t.call('anonymous', 'GET', `/reports/programs?${q()}`)).statusCode).toBe(401)
    expect(
      (await t.call('gp', 'GET', `/reports/programs?practiceId=clinic&programId=${programId}&${q()}`))
        .statusCode,
    ).toBe(404)
    const backwards = await t.call(
      'spec',
      'GET',
      `/reports/programs?practiceId=spec-a&from=${encodeURIComponent(to)}&to=${encodeURIComponent(from)}`,
    )
    expect(backwards.statusCode).toBe(400)
    const bad = await t.call('spec', 'GET', '/reports/programs?practiceId=spec-a&from=yesterday&to=now')
    expect(bad.statusCode).toBe(400)
    expect(bad.body).not.toContain('yesterday')
  })

  it('counts an intake in the period it opened in: an empty period reads zeros', async () => {
    const res = await t.call(
      'spec',
      'GET',
      `/reports/programs?practiceId=spec-a&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z`,
    )
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json().cells[0]).toEqual({
      level: 'program',
      group: { programId },
      intakes: 0,
      suppressed: false,
      figures: zero,
    })
  })
})
