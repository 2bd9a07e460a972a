import {
  type IntakeId,
  type PatientId,
  type PracticeId,
  type ProgramId,
  type ReferralId,
  type ReferralLinkId,
  unsafeId,
} from '@referrals/core'
import { createWorld, programWorld } from '@referrals/core/testing'
import { type Smsc, startSmsc } from '@referrals/notify/testing'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { testConfig } from '../testing.js'
import { type Notifications, startNotifications } from './start.js'

const MASTER_KEY = Buffer.alloc(32, 7).toString('base64')
const SYSTEM_ID = 'referrals'
const PASSWORD = 'pw-0123'
const HOUR = 3_600_000

/**
 * The service's SMS over SMPP, end to end: settings from the environment, the outbox projector and
 * the delivery loop of `startNotifications`, and a real local SMSC (the `smpp` package's server).
 */
describe('startNotifications with SMPP_URL against a real local SMSC', () => {
  let smsc: Smsc
  let notifications: Notifications | undefined
  const smppEnv = () => ({
    SMPP_URL: smsc.url,
    SMPP_SYSTEM_ID: SYSTEM_ID,
    SMPP_PASSWORD: PASSWORD,
    SMPP_SOURCE_ADDR: 'Referrals',
  })

  beforeAll(async () => {
    smsc = await startSmsc({ systemId: SYSTEM_ID, password: PASSWORD })
  })
  afterEach(async () => {
    await notifications?.stop()
    notifications = undefined
    smsc.binds.length = 0
    smsc.submits.length = 0
  })
  afterAll(() => smsc.close())

  it("binds with the configured credentials and texts a practice's SMS number: fixed wording and the referral number only", async () => {
    const world = await createWorld()
    const specA = await world.addSpecialist('spec-a', 1)
    notifications = await startNotifications(
      { config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), store: world.store, engine: world.engine },
      { clock: world.clock, env: smppEnv(), schedulerIntervalMs: 10, deliveryIntervalMs: 10 },
    )
    await notifications.preferences.put(
      { kind: 'practice', practiceId: specA },
      { channels: { sms: '+15145550123' } },
    )
    await world.send('r-7')
    await vi.waitFor(() => expect(smsc.submits.length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 })
    expect(smsc.binds).toEqual([{ systemId: SYSTEM_ID, password: PASSWORD }])
    expect(smsc.submits[0]?.pdu).toMatchObject({
      source_addr: 'Referrals',
      destination_addr: '15145550123',
      registered_delivery: 1,
    })
    expect(smsc.submits[0]?.message).toBe('New referral: #r-7. Open the referral list for details.')
    await vi.waitFor(
      async () => expect((await notifications?.outbox.list({ status: 'delivered' }))?.length).toBe(1),
      { timeout: 5_000, interval: 20 },
    )
  })

  it('texts a consenting patient only with NOTIFY_PATIENT_SMS, after the quiet hours, with no referral detail', async () => {
    const world = await createWorld() // clock at 2026-03-02T08:00Z: 03:00 in Toronto
    await world.addSpecialist('spec-a', 1)
    const sendWithPhone = async (referralId: string, sms: boolean) => {
      const data = world.sendData(referralId)
      const phi = data.phi as { patient: object; reason: string }
      await world.must(
        world.engine.referrals.execute(
          unsafeId<ReferralId>(referralId),
          {
            type: 'SendReferral',
            data: {
              ...data,
              phi: {
                ...phi,
                patient: {
                  ...phi.patient,
                  phone: '+1 (514) 555-0199',
                  consent: { email: false, sms, phone: false },
                },
              },
            } as typeof data,
          },
          await world.as(world.ownerOf('clinic')),
        ),
      )
    }
    notifications = await startNotifications(
      { config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), store: world.store, engine: world.engine },
      {
        clock: world.clock,
        env: {
          ...smppEnv(),
          NOTIFY_PATIENT_SMS: 'true',
          NOTIFY_PATIENT_SMS_QUIET_HOURS: '21:00-08:00 America/Toronto',
        },
        schedulerIntervalMs: 10,
        deliveryIntervalMs: 10,
      },
    )
    await sendWithPhone('r-1', true)
    await sendWithPhone('r-2', false) // no SMS consent: never texted
    // Queued, but held until 08:00 Toronto (13:00Z).
    await vi.waitFor(
      async () =>
        expect((await notifications?.outbox.list())?.filter((e) => e.channel === 'sms')).toHaveLength(1),
      { timeout: 5_000, interval: 20 },
    )
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(smsc.submits).toEqual([])
    world.clock.advance(5 * HOUR)
    await vi.waitFor(() => expect(smsc.submits).toHaveLength(1), { timeout: 5_000, interval: 20 })
    const submit = smsc.submits[0]
    expect(submit?.pdu.destination_addr).toBe('15145550199')
    expect(submit?.message).toBe('Your referral was sent. The specialist office will contact you.')
    await vi.waitFor(
      async () => {
        const [entry] = (await notifications?.outbox.list({ status: 'delivered' })) ?? []
        expect(entry?.notification.audience).toBe('patient')
        // Delivered patient entries keep no phone number.
        expect(entry?.address).toBeNull()
      },
      { timeout: 5_000, interval: 20 },
    )
  })

  it('reminds an intake that consented to SMS by text after the quiet hours, never one that did not, with no clinical detail', async () => {
    const world = await createWorld() // clock at 2026-03-02T08:00Z: 03:00 in Toronto
    const programs = programWorld({ store: world.store, ids: world.engine.ids, clock: world.clock })
    const programId = unsafeId<ProgramId>('prog-sms')
    const linkId = unsafeId<ReferralLinkId>('flyer')
    await programs.createProgram({
      programId,
      practiceId: unsafeId<PracticeId>('clinic'),
      links: [
        { linkId, code: 'SMSR000001', attribution: { location: 'Main St', serviceLine: 'physiotherapy' } },
      ],
    })
    for (const [n, sms] of [
      ['yes', true],
      ['no', false],
    ] as const)
      await programs.submitIntake({
        programId,
        linkId,
        intakeId: unsafeId<IntakeId>(`in-sms-${n}`),
        patientId: unsafeId<PatientId>(`intake-pat-${n}`),
        phi: { patient: { givenName: 'Canaryname', familyName: 'Phisurname', phone: '+1 514 555 0177' } },
        communication: { email: false, sms, phone: !sms, mail: false },
      })
    notifications = await startNotifications(
      { config: testConfig({ REFERRALS_MASTER_KEY: MASTER_KEY }), store: world.store, engine: world.engine },
      {
        clock: world.clock,
        env: {
          ...smppEnv(),
          NOTIFY_PATIENT_SMS: 'true',
          NOTIFY_PATIENT_SMS_QUIET_HOURS: '21:00-08:00 America/Toronto',
        },
        schedulerIntervalMs: 10,
        deliveryIntervalMs: 10,
      },
    )
    // The first reminder is due 48 h after submitting: 2026-03-04T08:00Z, 03:00 in Toronto again.
    world.clock.advance(48 * HOUR)
    await vi.waitFor(
      async () =>
        expect((await notifications?.outbox.list())?.filter((e) => e.channel === 'sms')).toHaveLength(1),
      { timeout: 5_000, interval: 20 },
    )
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(smsc.submits).toEqual([])
    world.clock.advance(5 * HOUR)
    // Longer than one SMS: sent as the parts of one concatenated message, all to the one number.
    await vi.waitFor(
      async () => expect((await notifications?.outbox.list({ status: 'delivered' }))?.length).toBe(1),
      { timeout: 5_000, interval: 20 },
    )
    expect(smsc.submits.length).toBeGreaterThan(0)
    expect(new Set(smsc.submits.map((x) => x.pdu.destination_addr))).toEqual(new Set(['15145550177']))
    const text = smsc.submits.map((x) => x.message).join('')
    expect(text).toContain('(Main St) has not yet heard from you to book your physiotherapy appointment.')
    expect(text).toContain('/r/SMSR000001')
    expect(text).not.toContain('Canaryname')
    expect(text).not.toContain('Phisurname')
  })
})
