import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { ReferralEvent } from '../referral/index.js'
import { type PracticeId, type ReferralId, unsafeId } from '../shared/ids.js'
import { HOUR_MS, type Instant } from '../shared/time.js'
import { createWorld, type World } from '../testing/world.js'
import { decodeStored } from './command-handler.js'
import { createDeadlineScheduler } from './deadlines.js'
import { deriveNotifications, type NotificationIntent } from './notifications.js'

/** Derives every intent of a referral's stream, event by event, as a projector would. */
const deriveAll = async (w: World, referralId: string): Promise<NotificationIntent[]> => {
  const stored = await w.store.readStream(unsafeId(`referral-${referralId}`))()
  if (E.isLeft(stored)) throw new Error(stored.left.message)
  const history: ReferralEvent[] = []
  const out: NotificationIntent[] = []
  for (const s of stored.right) {
    const decoded = await decodeStored(w.engine.referrals.aggregate, s)
    if (E.isLeft(decoded)) throw new Error(decoded.left.message)
    out.push(
      ...deriveNotifications(decoded.right, s, {
        history,
        practiceName: (id) => `Name of ${id}`,
      }),
    )
    history.push(decoded.right)
  }
  return out
}

const kinds = (intents: readonly NotificationIntent[]) =>
  intents.map((i) => `${i.audience}:${i.kind}${i.practiceId === undefined ? '' : `@${i.practiceId}`}`)

const sendWithConsent = async (
  w: World,
  referralId: string,
  consent: { email: boolean; sms: boolean; phone: boolean },
  target?: Parameters<World['sendData']>[1],
) => {
  const data = w.sendData(referralId, target)
  const phi = data.phi as { patient: object; reason: string }
  await w.must(
    w.engine.referrals.execute(
      unsafeId<ReferralId>(referralId),
      {
        type: 'SendReferral',
        data: {
          ...data,
          phi: {
            ...phi,
            patient: {
              ...phi.patient,
              email: 'canary.patient@example.test',
              communication: { preferredChannel: 'sms' },
              consent,
            },
          },
        } as typeof data,
      },
      await w.as(w.ownerOf('clinic')),
    ),
  )
}

const actAs = async (w: World, practiceId: PracticeId) => w.as(w.ownerOf(practiceId))

describe('deriveNotifications', () => {
  it('tells the sender of receipt and the recipient of a new pooled referral; the patient only with consent', async () => {
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    await w.send('n1')
    const intents = await deriveAll(w, 'n1')
    expect(kinds(intents)).toEqual(['sender:sender.receipt@clinic', `recipient:recipient.new_referral@${a}`])
    const recipient = intents[1]
    expect(recipient?.payload).toMatchObject({
      referralId: 'n1',
      preferredProvider: false,
      deliveryNo: 1,
      urgency: 'routine',
      senderPracticeName: 'Name of clinic',
      respondBy: '2026-03-04T08:00:00.000Z',
    })
  })

  it('names the preferred provider on a direct referral', async () => {
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    await w.send('d1', { kind: 'direct', practiceId: a })
    const intents = await deriveAll(w, 'd1')
    expect(intents.find((i) => i.kind === 'recipient.new_referral')?.payload.preferredProvider).toBe(true)
  })

  it('uses ids <eventId>:<audience>:<kind> and derives the same intents again', async () => {
    const w = await createWorld()
    await w.addSpecialist('spec-a', 1)
    await w.send('n2')
    const stored = await w.store.readStream(unsafeId('referral-n2'))()
    if (E.isLeft(stored)) throw new Error('read')
    const delivered = stored.right.find((e) => e.type === 'ReferralDelivered')
    const first = await deriveAll(w, 'n2')
    expect(first.map((i) => i.id)).toEqual([
      `${delivered?.id}:sender:sender.receipt`,
      `${delivered?.id}:recipient:recipient.new_referral`,
    ])
    expect(await deriveAll(w, 'n2')).toEqual(first)
  })

  it('follows a pooled referral through decline, re-route, reminder, expiry, accept, schedule and completion', async () => {
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    const b = await w.addSpecialist('spec-b', 1)
    await w.send('n3')
    const first = (await w.holderOf('n3')) as PracticeId
    const second = first === a ? b : a
    await w.must(
      w.engine.referrals.execute(
        unsafeId<ReferralId>('n3'),
        { type: 'DeclineReferral', data: { reasonCode: 'capacity', phi: { note: 'Canary note' } } },
        await actAs(w, first),
      ),
    )
    const scheduler = createDeadlineScheduler(w.engine, { clock: w.clock })
    w.clock.advance(24 * HOUR_MS)
    await scheduler.tick()
    await w.must(
      w.engine.referrals.execute(
        unsafeId<ReferralId>('n3'),
        { type: 'AcceptReferral', data: {} },
        await actAs(w, second),
      ),
    )
    await w.must(
      w.engine.referrals.execute(
        unsafeId<ReferralId>('n3'),
        {
          type: 'ScheduleAppointment',
          data: { at: '2026-03-10T09:30:00.000Z' as Instant, phi: { location: 'Canary room 7' } },
        },
        await actAs(w, second),
      ),
    )
    await w.must(
      w.engine.referrals.execute(
        unsafeId<ReferralId>('n3'),
        { type: 'CompleteReferral', data: { phi: { outcomeNote: 'Canary outcome' } } },
        await actAs(w, second),
      ),
    )
    const intents = await deriveAll(w, 'n3')
    expect(kinds(intents)).toEqual([
      'sender:sender.receipt@clinic',
      `recipient:recipient.new_referral@${first}`,
      'sender:sender.rerouted@clinic',
      `recipient:recipient.new_referral@${second}`,
      `recipient:recipient.reminder@${second}`,
      'sender:sender.accepted@clinic',
      'sender:sender.scheduled@clinic',
      'sender:sender.completed@clinic',
    ])
    expect(intents.find((i) => i.kind === 'sender.scheduled')?.payload.appointmentAt).toBe(
      '2026-03-10T09:30:00.000Z',
    )
    expect(JSON.stringify(intents)).not.toContain('Canary')
  })

  it('sends the expiry notice to the practice that let it expire and the return to the sender', async () => {
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    await sendWithConsent(
      w,
      'x1',
      { email: true, sms: false, phone: false },
      { kind: 'direct', practiceId: a },
    )
    w.clock.advance(48 * HOUR_MS)
    await createDeadlineScheduler(w.engine, { clock: w.clock }).tick()
    const intents = await deriveAll(w, 'x1')
    expect(kinds(intents)).toEqual([
      'patient:patient.confirmation',
      'sender:sender.receipt@clinic',
      `recipient:recipient.new_referral@${a}`,
      `recipient:recipient.expired@${a}`,
      'sender:sender.declined@clinic',
      'patient:patient.unavailable',
    ])
    expect(intents.find((i) => i.kind === 'sender.declined')?.payload.returnReason).toBe('expired')
  })

  it('tells a consenting patient without clinical detail, preferred channel first', async () => {
    const w = await createWorld()
    await sendWithConsent(w, 'p1', { email: true, sms: true, phone: false })
    w.clock.advance(72 * HOUR_MS)
    await createDeadlineScheduler(w.engine, { clock: w.clock }).tick()
    const intents = await deriveAll(w, 'p1')
    expect(kinds(intents)).toEqual(['patient:patient.confirmation', 'patient:patient.pending_reminder'])
    for (const intent of intents) {
      expect(intent.patientId).toBe('pat-p1')
      expect(intent.patientChannels).toEqual(['sms', 'email'])
      const json = JSON.stringify(intent.payload)
      for (const clinical of ['Canary', 'canary.patient', 'ortho', 'knee', 'routine', 'HN-p1']) {
        expect(json).not.toContain(clinical)
      }
    }
  })

  it('tells no patient without consent, and nothing to a forgotten patient', async () => {
    const w = await createWorld()
    await sendWithConsent(w, 'p2', { email: false, sms: false, phone: false })
    expect(await deriveAll(w, 'p2')).toEqual([])

    await sendWithConsent(w, 'p3', { email: true, sms: true, phone: true })
    const stored = await w.store.readStream(unsafeId('referral-p3'))()
    if (E.isLeft(stored)) throw new Error('read')
    const [sentStored] = stored.right
    if (sentStored === undefined) throw new Error('no event')
    const decoded = await decodeStored(w.engine.referrals.aggregate, sentStored)
    if (E.isLeft(decoded) || decoded.right.type !== 'ReferralSent') throw new Error('decode')
    const forgotten: ReferralEvent = {
      ...decoded.right,
      data: { ...decoded.right.data, phi: { redacted: true } },
    }
    expect(deriveNotifications(decoded.right, sentStored, { history: [] })).toHaveLength(1)
    expect(deriveNotifications(forgotten, sentStored, { history: [] })).toEqual([])
    const reminder: ReferralEvent = {
      type: 'PatientReminderIssued',
      data: {
        referralId: unsafeId<ReferralId>('p3'),
        patientId: decoded.right.data.patientId,
        sequence: 1,
        issuedAt: '2026-03-05T08:00:00.000Z' as Instant,
      },
    }
    expect(deriveNotifications(reminder, sentStored, { history: [forgotten] })).toEqual([])
    expect(deriveNotifications(reminder, sentStored, { history: [decoded.right] })).toHaveLength(1)
  })
})
