import {
  type CommandId,
  type CorrelationId,
  createIntakeConversions,
  type EventId,
  expected,
  type IncentiveRule,
  type IncentiveRuleId,
  type Instant,
  type IntakeId,
  intakeStreamId,
  manualClock,
  type PatientId,
  type PracticeId,
  type ProgramId,
  programStreamId,
  REDACTED,
  type ReferralId,
  type ReferralLinkId,
  type ReferrerId,
  referralStreamId,
  type StoredEvent,
  sequentialUuids,
  unsafeId,
} from '@referrals/core'
import { createWorld, programWorld } from '@referrals/core/testing'
import { createAesGcmPhiCipher } from '@referrals/crypto'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import * as E from 'fp-ts/lib/Either.js'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadConfig } from '../config.js'
import { openRuntime, type Runtime } from '../server.js'
import { startNotifications } from './start.js'

const T0 = '2026-03-02T08:00:00.000Z' as Instant
const SCHEMA = 'notify_intakes_test'
const ruleId = unsafeId<IncentiveRuleId>('thanks')
const CANARY = /Canaryname|Phisurname|1980-02-29|Canary knee/

const rule = (perReferrer: number): IncentiveRule =>
  ({
    ruleId,
    reward: { kind: 'community_donation', description: 'A donation to the food bank' },
    eligibility: ['referral_completed'],
    caps: { perReferrer, perPeriod: { days: 30, max: 1000 } },
    disclosureText: 'Donations are made whatever the care received.',
  }) as unknown as IncentiveRule

const phi = {
  patient: {
    givenName: 'Canaryname',
    familyName: 'Phisurname',
    dateOfBirth: '1980-02-29',
    email: 'canary@example.org',
    phone: '+15550100',
  },
}

/**
 * Issue 15 on the production wiring (`openRuntime`: hash-chained PostgreSQL store, AES-GCM PHI):
 * the conversion process and the intake reminders run inside `startNotifications`.
 */
describe('referral-program processes in the service runtime on PostgreSQL', () => {
  let db: TestDatabase
  let runtime: Runtime
  let pool: pg.Pool
  let w: Awaited<ReturnType<typeof createWorld>>
  const clock = manualClock(T0)

  beforeAll(async () => {
    db = await createTestDatabase()
    const config = await loadConfig({ DATABASE_URL: db.url, LOG_LEVEL: 'silent' }, () => undefined)
    runtime = await openRuntime(config, { clock })
    pool = new pg.Pool({ connectionString: db.url })
    // Another engine on the same store and keys (as another API process): referrals and practices.
    w = await createWorld({ store: runtime.store, cipher: createAesGcmPhiCipher({ keys: runtime.keys }) })
  }, 60_000)

  afterAll(async () => {
    await pool?.end()
    await runtime?.close()
    await db?.drop()
  })

  const cipher = () => createAesGcmPhiCipher({ keys: runtime.keys })
  const env = {
    DECISION_LINK_SECRET: 'k'.repeat(32),
    // Nothing listens there: entries stay in the outbox, which is what these tests read.
    SMTP_URL: 'smtp://127.0.0.1:9',
    SMTP_FROM: 'clinic@example.org',
    PUBLIC_BASE_URL: 'https://referrals.example',
    INTAKE_REMINDER_DELAY: '48h',
    INTAKE_REMINDER_INTERVAL: '72h',
    INTAKE_REMINDER_MAX_COUNT: '2',
  }
  const start = () =>
    startNotifications(runtime, {
      clock,
      env,
      schema: SCHEMA,
      schedulerIntervalMs: 20,
      deliveryIntervalMs: 3_600_000,
      projectorRestartMs: 50,
    })

  const streamTypes = async (streamId: Parameters<Runtime['store']['readStream']>[0]) => {
    const r = await runtime.store.readStream(streamId)()
    if (E.isLeft(r)) throw new Error(r.left.message)
    return r.right
  }

  it('records the conversion of a real referral on its intake and awards once, across a restart', async () => {
    const spec = await w.addSpecialist('spec-conv', 1)
    const programs = programWorld({ store: runtime.store, ids: sequentialUuids(7), clock, cipher: cipher() })
    const programId = unsafeId<ProgramId>('prog-conv')
    const linkId = unsafeId<ReferralLinkId>('link-conv')
    const owner = w.ids.clinic
    await programs.createProgram({
      programId,
      practiceId: owner as PracticeId,
      links: [
        {
          linkId,
          code: 'CNVR000001',
          attribution: { channel: 'word-of-mouth', referringPersonId: unsafeId<ReferrerId>('ann') },
        },
      ],
      rules: [rule(3)],
    })
    const notifications = await start()
    try {
      const referralId = 'r-conv-1'
      await w.send(referralId, { kind: 'direct', practiceId: spec })
      const intakeId = unsafeId<IntakeId>('in-conv-1')
      await programs.submitIntake({
        programId,
        linkId,
        intakeId,
        patientId: unsafeId<PatientId>('pat-conv-1'),
        phi,
        communication: { email: true, sms: false, phone: false, mail: false },
        referralId: unsafeId<ReferralId>(referralId),
      })
      const holder = await w.as(w.ownerOf(spec))
      const rid = unsafeId<ReferralId>(referralId)
      await w.must(w.engine.referrals.execute(rid, { type: 'AcceptReferral', data: {} }, holder))
      await w.must(
        w.engine.referrals.execute(
          rid,
          {
            type: 'ScheduleAppointment',
            data: { at: '2026-03-10T09:30:00.000Z' as Instant, phi: { location: 'Canary room 7' } },
          },
          holder,
        ),
      )
      await w.must(w.engine.referrals.execute(rid, { type: 'CompleteReferral', data: {} }, holder))
      await vi.waitFor(
        async () => {
          const types = (await streamTypes(programStreamId(programId))).map((e) => e.type)
          expect(types).toContain('IncentiveAwarded')
        },
        { timeout: 15_000, interval: 50 },
      )
      const intake = await streamTypes(intakeStreamId(intakeId))
      expect(intake.map((e) => e.type).slice(3)).toEqual([
        'IntakeAppointmentScheduled',
        'IntakeAppointmentCompleted',
      ])
      expect(intake[3]?.data).toMatchObject({ appointmentAt: '2026-03-10T09:30:00.000Z' })
      // The funnel stream holds no clinical detail of the referral.
      expect(JSON.stringify(intake.map((e) => e.data))).not.toMatch(/Canary room/)
    } finally {
      await notifications.stop()
    }
    const checkpoint = await pool.query<{ subscription_id: string }>(
      "SELECT subscription_id FROM referrals.checkpoints WHERE subscription_id = 'intake-conversions'",
    )
    expect(checkpoint.rows).toHaveLength(1)
    // A restarted process (and its checkpoint reset: a full replay) records and awards nothing again.
    await pool.query("DELETE FROM referrals.checkpoints WHERE subscription_id = 'intake-conversions'")
    const again = await start()
    try {
      await vi.waitFor(
        async () => {
          const rows = await pool.query(
            "SELECT 1 FROM referrals.checkpoints WHERE subscription_id = 'intake-conversions'",
          )
          expect(rows.rows).toHaveLength(1)
        },
        { timeout: 15_000, interval: 50 },
      )
      const version = (await streamTypes(programStreamId(programId))).length
      await new Promise((r) => setTimeout(r, 300))
      const program = await streamTypes(programStreamId(programId))
      expect(program).toHaveLength(version)
      expect(program.filter((e) => e.type === 'IncentiveAwarded')).toHaveLength(1)
      const intake = await streamTypes(intakeStreamId(unsafeId<IntakeId>('in-conv-1')))
      expect(intake.filter((e) => e.type === 'IntakeAppointmentCompleted')).toHaveLength(1)
    } finally {
      await again.stop()
    }
  }, 60_000)

  it('caps hold under 50 concurrent conversions of one referrer (cap 3): 3 awards, 47 refusals', async () => {
    const programs = programWorld({ store: runtime.store, ids: sequentialUuids(8), clock, cipher: cipher() })
    const programId = unsafeId<ProgramId>('prog-cap')
    const linkId = unsafeId<ReferralLinkId>('link-cap')
    await programs.createProgram({
      programId,
      practiceId: unsafeId<PracticeId>('clinic'),
      links: [
        {
          linkId,
          code: 'CAPS000001',
          attribution: { channel: 'word-of-mouth', referringPersonId: unsafeId<ReferrerId>('ann') },
        },
      ],
      rules: [rule(3)],
    })
    const N = 50
    const completions: StoredEvent[] = []
    for (let i = 0; i < N; i++) {
      const referralId = unsafeId<ReferralId>(`r-cap-${i}`)
      await programs.submitIntake({
        programId,
        linkId,
        intakeId: unsafeId<IntakeId>(`in-cap-${i}`),
        patientId: unsafeId<PatientId>(`pat-cap-${i}`),
        phi,
        communication: { email: false, sms: false, phone: false, mail: false },
        referralId,
      })
      // The referral's conversion facts, as the referral aggregate stores them (the process reads
      // only their type and appointment time).
      const meta = {
        actor: { kind: 'system', component: 'test' } as const,
        correlationId: unsafeId<CorrelationId>('cap'),
        commandId: unsafeId<CommandId>(`cap-${i}`),
        occurredAt: T0,
      }
      const r = await runtime.store.append({
        streamId: referralStreamId(referralId),
        expected: expected.noStream,
        events: [
          {
            id: unsafeId<EventId>(`cap-s-${i}`),
            type: 'AppointmentScheduled',
            schemaVersion: 1,
            data: { referralId, practiceId: 'spec', at: '2026-03-10T09:30:00.000Z', phi: REDACTED },
            metadata: meta,
          },
          {
            id: unsafeId<EventId>(`cap-c-${i}`),
            type: 'ReferralCompleted',
            schemaVersion: 1,
            data: { referralId, practiceId: 'spec', phi: REDACTED, completedAt: T0 },
            metadata: meta,
          },
        ],
      })()
      if (E.isLeft(r)) throw new Error(r.left.message)
      const stored = await streamTypes(referralStreamId(referralId))
      completions.push(...stored)
    }
    // Two processes (as two service instances would), each handling all 100 events at once.
    const processes = [1, 2].map((n) =>
      createIntakeConversions({
        store: runtime.store,
        ids: sequentialUuids(100 + n),
        clock,
        cipher: cipher(),
      }),
    )
    const scheduled = completions.filter((e) => e.type === 'AppointmentScheduled')
    await Promise.all(scheduled.flatMap((e) => processes.map((p) => p.handle(e))))
    const done = completions.filter((e) => e.type === 'ReferralCompleted')
    const results = await Promise.allSettled(done.flatMap((e) => processes.map((p) => p.handle(e))))
    expect(results.filter((r) => r.status === 'rejected')).toEqual([])

    const program = await streamTypes(programStreamId(programId))
    expect(program.map((e) => e.version)).toEqual(Array.from({ length: program.length }, (_, i) => i + 1))
    const awards = program.filter((e) => e.type === 'IncentiveAwarded')
    const refusals = program.filter((e) => e.type === 'IncentiveRefused')
    expect(awards).toHaveLength(3)
    expect(refusals).toHaveLength(47)
    for (const r of refusals)
      expect(r.data).toMatchObject({ reason: 'per_referrer_cap_reached', rule: { ruleId: 'thanks' } })
    const decided = new Set(
      program.flatMap((e) =>
        e.type.startsWith('Incentive') && e.type !== 'IncentiveRuleDefined'
          ? [(e.data as { intakeId: string }).intakeId]
          : [],
      ),
    )
    expect(decided.size).toBe(N)
    for (let i = 0; i < N; i++) {
      const intake = await streamTypes(intakeStreamId(unsafeId<IntakeId>(`in-cap-${i}`)))
      expect(intake.map((e) => e.type).slice(3)).toEqual([
        'IntakeAppointmentScheduled',
        'IntakeAppointmentCompleted',
      ])
      expect(intake.map((e) => e.version)).toEqual([1, 2, 3, 4, 5])
    }
  }, 120_000)

  it('queues reminders in the outbox for unbooked intakes, by consented email only, without clinical detail', async () => {
    const programs = programWorld({ store: runtime.store, ids: sequentialUuids(9), clock, cipher: cipher() })
    const programId = unsafeId<ProgramId>('prog-rem')
    const linkId = unsafeId<ReferralLinkId>('link-rem')
    await programs.createProgram({
      programId,
      practiceId: w.ids.clinic as PracticeId,
      location: 'North Clinic, 1 Main St',
      links: [{ linkId, code: 'RMND000001', attribution: { channel: 'flyer', serviceLine: 'orthopaedics' } }],
    })
    const submit = (
      n: string,
      communication: { email: boolean; sms: boolean; phone: boolean; mail: boolean },
    ) =>
      programs.submitIntake({
        programId,
        linkId,
        intakeId: unsafeId<IntakeId>(`in-rem-${n}`),
        patientId: unsafeId<PatientId>(`pat-rem-${n}`),
        phi,
        communication,
      })
    clock.set(T0)
    await submit('email', { email: true, sms: false, phone: true, mail: true })
    await submit('sms', { email: false, sms: true, phone: true, mail: false })
    await submit('booked', { email: true, sms: true, phone: false, mail: false })
    const rows = async () =>
      (
        await pool.query<{ id: string; channel: string; notification: { text: string; subject: string } }>(
          `SELECT id, channel, notification FROM ${SCHEMA}.outbox WHERE id LIKE 'intake-reminder:in-rem-%' ORDER BY id`,
        )
      ).rows
    const notifications = await start()
    try {
      clock.set('2026-03-04T08:00:00.000Z' as Instant) // 48 h later
      await vi.waitFor(async () => expect((await rows()).length).toBe(2), { timeout: 15_000, interval: 50 })
      const first = await rows()
      expect(first.map((r) => [r.id, r.channel])).toEqual([
        ['intake-reminder:in-rem-booked:1:email:patient-pat-rem-booked', 'email'],
        ['intake-reminder:in-rem-email:1:email:patient-pat-rem-email', 'email'],
      ])
      const text = first[1]?.notification.text ?? ''
      expect(text).toBe(
        [
          'Clinic (North Clinic, 1 Main St) has not yet heard from you to book your orthopaedics appointment.',
          'You can choose a time here: https://referrals.example/r/RMND000001',
          'If you have already booked, please ignore this message.',
        ].join('\n'),
      )
      expect(JSON.stringify(first)).not.toMatch(CANARY)
      // `booked` is referred and gets an appointment: the conversion process records it; no 2nd reminder.
      await programs.recordReferralSent(unsafeId<IntakeId>('in-rem-booked'), unsafeId<ReferralId>('r-rem'))
      await runtime.store.append({
        streamId: referralStreamId(unsafeId<ReferralId>('r-rem')),
        expected: expected.noStream,
        events: [
          {
            id: unsafeId<EventId>('rem-s-1'),
            type: 'AppointmentScheduled',
            schemaVersion: 1,
            data: {
              referralId: 'r-rem',
              practiceId: 'spec',
              at: '2026-03-10T09:30:00.000Z',
              phi: REDACTED,
            },
            metadata: {
              actor: { kind: 'system', component: 'test' },
              correlationId: unsafeId<CorrelationId>('rem'),
              commandId: unsafeId<CommandId>('rem-1'),
              occurredAt: T0,
            },
          },
        ],
      })()
      await vi.waitFor(
        async () => {
          const types = (await streamTypes(intakeStreamId(unsafeId<IntakeId>('in-rem-booked')))).map(
            (e) => e.type,
          )
          expect(types).toContain('IntakeAppointmentScheduled')
        },
        { timeout: 15_000, interval: 50 },
      )
      clock.set('2026-03-30T08:00:00.000Z' as Instant) // long after: the last (2nd) reminder only
      await vi.waitFor(async () => expect((await rows()).length).toBe(3), { timeout: 15_000, interval: 50 })
      await new Promise((r) => setTimeout(r, 200))
      expect((await rows()).map((r) => r.id)).toEqual([
        'intake-reminder:in-rem-booked:1:email:patient-pat-rem-booked',
        'intake-reminder:in-rem-email:1:email:patient-pat-rem-email',
        'intake-reminder:in-rem-email:2:email:patient-pat-rem-email',
      ])
    } finally {
      await notifications.stop()
    }
  }, 60_000)
})
