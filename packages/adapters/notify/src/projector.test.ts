import {
  type CheckpointStore,
  createDeadlineScheduler,
  createInMemoryCheckpointStore,
  createInMemoryEventStore,
  HOUR_MS,
  type PracticeId,
  type ReferralId,
  type UserId,
  unsafeId,
} from '@referrals/core'
import { createWorld, type World } from '@referrals/core/testing'
import { createAesGcmPhiCipher, createInMemoryPatientKeyStore, MasterKey } from '@referrals/crypto'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { createDecisionLinks, inMemoryUsedLinks } from './decision-links.js'
import { inMemoryOutbox } from './outbox.js'
import { inMemoryPreferences } from './preferences.js'
import { createOutboxProjector } from './projector.js'

const WEBHOOK_SECRET = 'whsec_projector_0123456789abcdef'

const sendWithConsent = async (w: World, referralId: string, target?: Parameters<World['sendData']>[1]) => {
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
              email: `canary.${referralId}@patients.example.test`,
              consent: { email: true, sms: false, phone: false },
            },
          },
        } as typeof data,
      },
      await w.as(w.ownerOf('clinic')),
    ),
  )
}

const setup = async (options: { readonly checkpoints?: CheckpointStore } = {}) => {
  const store = createInMemoryEventStore(
    options.checkpoints === undefined ? {} : { checkpoints: options.checkpoints },
  )
  const w = await createWorld({ store })
  const a = await w.addSpecialist('spec-a', 1)
  const outbox = inMemoryOutbox()
  const preferences = inMemoryPreferences()
  await preferences.put(
    { kind: 'practice', practiceId: w.ids.clinic },
    { channels: { email: 'front@clinic.test' } },
  )
  await preferences.put(
    { kind: 'practice', practiceId: a },
    { channels: { email: 'office@spec-a.test', webhook: 'https://hooks.spec-a.test/in' } },
  )
  await preferences.put(
    { kind: 'user', userId: unsafeId<UserId>('owner-spec-a') },
    { channels: { email: 'dr@spec-a.test' } },
  )
  const projector = (extra: Partial<Parameters<typeof createOutboxProjector>[0]> = {}) =>
    createOutboxProjector({
      store,
      engine: w.engine,
      outbox,
      preferences,
      clock: w.clock,
      webhookSecret: WEBHOOK_SECRET,
      ...extra,
    })
  return { w, a, outbox, preferences, projector, store }
}

const summary = async (outbox: ReturnType<typeof inMemoryOutbox>) =>
  (await outbox.list()).map((e) => `${e.notification.kind} ${e.channel} ${JSON.stringify(e.address)}`)

describe('outbox projector', () => {
  it('queues each notification to every channel of the practice, its members and a consenting patient', async () => {
    const { w, a, outbox, projector } = await setup()
    const p = projector()
    p.start()
    await sendWithConsent(w, 'r1', { kind: 'direct', practiceId: a })
    await p.start().caughtUp()
    await p.stop()
    expect((await summary(outbox)).sort()).toEqual(
      [
        'patient.confirmation email {"email":"canary.r1@patients.example.test"}',
        'sender.receipt email {"email":"front@clinic.test"}',
        'recipient.new_referral email {"email":"office@spec-a.test"}',
        `recipient.new_referral webhook {"url":"https://hooks.spec-a.test/in","secret":"${WEBHOOK_SECRET}"}`,
        'recipient.new_referral email {"email":"dr@spec-a.test"}',
      ].sort(),
    )
    const entries = await outbox.list()
    const newReferral = entries.find((e) => e.notification.kind === 'recipient.new_referral')?.notification
    expect(newReferral?.subject).toBe('New referral for you (preferred provider) r1')
    expect(newReferral?.text).toContain(
      'Clinic sent referral r1 (ortho, routine), naming you as the preferred provider.',
    )
    expect(newReferral?.text).toContain('Please accept or decline by 2026-03-04 08:00 UTC.')
    const patient = entries.find((e) => e.notification.audience === 'patient')?.notification
    expect(patient?.text).toBe("Clinic sent your referral. The specialist's office will contact you.")
    // No PHI in any message or payload; the patient's address lives only in the entry's address.
    for (const e of entries) expect(JSON.stringify(e.notification)).not.toMatch(/canary|HN-/i)
    const ids = entries.map((e) => e.notification.id)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('never duplicates a notification when an event is projected again', async () => {
    const { w, outbox, projector, store } = await setup()
    await w.send('r2')
    const p = projector()
    const all = await store.readAll({ streamPrefixes: ['referral-'] })()
    if (E.isLeft(all)) throw new Error('read')
    for (const e of all.right) await p.handle(e)
    const once = await summary(outbox)
    expect(once.length).toBeGreaterThan(0)
    for (const e of all.right) await p.handle(e)
    expect(await summary(outbox)).toEqual(once)
  })

  it('redelivery after a crash before the checkpoint is saved queues nothing twice', async () => {
    const inner = createInMemoryCheckpointStore()
    let failNextSave = false
    const checkpoints: CheckpointStore = {
      load: inner.load,
      save: async (id, previous, next) => {
        if (failNextSave) {
          failNextSave = false
          throw new Error('simulated crash after the handler, before the checkpoint')
        }
        return inner.save(id, previous, next)
      },
    }
    const { w, outbox, projector } = await setup({ checkpoints })
    const errors: unknown[] = []
    const first = projector({ onError: (e) => errors.push(e) })
    const running = first.start()
    await running.caughtUp()
    failNextSave = true
    // The first event (ReferralSent → patient confirmation) is handled, then its checkpoint is lost.
    await sendWithConsent(w, 'r3')
    await running.caughtUp()
    await first.stop()
    expect(errors).toHaveLength(1)
    expect((await summary(outbox)).map((s) => s.split(' ')[0])).toEqual(['patient.confirmation'])

    const enqueued: string[] = []
    const second = projector({
      outbox: {
        ...outbox,
        enqueue: async (entries, nowMs) => {
          enqueued.push(...entries.map((e) => e.notification.kind))
          await outbox.enqueue(entries, nowMs)
        },
      },
    })
    await second.start().caughtUp()
    await second.stop()
    const after = await summary(outbox)
    // ReferralSent was handed over again and re-derived, but the outbox kept one copy.
    expect(enqueued).toContain('patient.confirmation')
    expect(new Set(after).size).toBe(after.length)
    expect(after.filter((s) => s.startsWith('patient.confirmation'))).toHaveLength(1)
    expect(after.filter((s) => s.startsWith('sender.receipt'))).toHaveLength(1)
    expect(after.filter((s) => s.startsWith('recipient.new_referral'))).toHaveLength(3)
  })

  it('delays a routine reminder to the end of quiet hours but not an urgent one', async () => {
    const { w, a, outbox, preferences, projector } = await setup()
    await preferences.put(
      { kind: 'practice', practiceId: a },
      {
        channels: { email: 'office@spec-a.test' },
        quietHours: { start: '06:00', end: '13:00', timeZone: 'UTC' },
      },
    )
    const p = projector()
    p.start()
    const scheduler = createDeadlineScheduler(w.engine, { clock: w.clock })
    await w.send('urgent1', { kind: 'direct', practiceId: a }, { urgency: 'urgent' })
    await w.send('routine1', { kind: 'direct', practiceId: a })
    w.clock.advance(4 * HOUR_MS) // 12:00 UTC: the urgent reminder is due, inside quiet hours
    await scheduler.tick()
    await p.start().caughtUp()
    w.clock.advance(20 * HOUR_MS) // next day 08:00 UTC: the routine reminder, inside quiet hours
    await scheduler.tick()
    await p.start().caughtUp()
    await p.stop()
    const reminders = (await outbox.list()).filter(
      (e) =>
        e.notification.kind === 'recipient.reminder' &&
        e.address !== null &&
        JSON.stringify(e.address).includes('office'),
    )
    const due = (ref: string) =>
      reminders.find((e) => e.notification.payload.referralId === ref)?.state as { nextAttemptAtMs: number }
    expect(due('urgent1').nextAttemptAtMs).toBe(Date.parse('2026-03-02T12:00:00.000Z'))
    expect(due('routine1').nextAttemptAtMs).toBe(Date.parse('2026-03-03T13:00:00.000Z'))
  })

  it('puts working single-use accept and decline links in the new-referral message', async () => {
    const { w, a, outbox, projector } = await setup()
    const links = createDecisionLinks({
      secret: 'links-secret-0123456789abcdef-0123456789',
      clock: w.clock,
      usedStore: inMemoryUsedLinks(),
    })
    const p = projector({ decisionLinks: { links, baseUrl: 'https://referrals.test/decision' } })
    p.start()
    await w.send('r4', { kind: 'direct', practiceId: a })
    await p.start().caughtUp()
    await p.stop()
    const text =
      (await outbox.list()).find(
        (e) => e.notification.kind === 'recipient.new_referral' && e.channel === 'email',
      )?.notification.text ?? ''
    const accept = /Accept: https:\/\/referrals\.test\/decision\?token=(\S+)/.exec(text)?.[1] ?? ''
    const decline = /Decline: https:\/\/referrals\.test\/decision\?token=(\S+)/.exec(text)?.[1] ?? ''
    expect(await links.verify(accept)).toMatchObject({
      ok: true,
      claims: { referralId: 'r4', practiceId: a as PracticeId, action: 'accept', deliveryNo: 1 },
    })
    expect(await links.verify(decline)).toMatchObject({ ok: true, claims: { action: 'decline' } })
    expect(await links.verify(accept)).toEqual({ ok: false, reason: 'used' })
  })

  it('tells a patient without consent nothing, and sends no webhook without a signing secret', async () => {
    const { w, a, outbox, preferences } = await setup()
    const p = createOutboxProjector({ store: w.store, engine: w.engine, outbox, preferences, clock: w.clock })
    await w.send('r5', { kind: 'direct', practiceId: a }) // no consent in the world's default PHI
    const all = await w.store.readAll({ streamPrefixes: ['referral-r5'] })()
    if (E.isLeft(all)) throw new Error('read')
    for (const e of all.right) await p.handle(e)
    const entries = await outbox.list()
    expect(entries.map((e) => `${e.notification.audience} ${e.channel}`).sort()).toEqual([
      'recipient email',
      'recipient email',
      'sender email',
    ])
  })

  it('reads consent through the PHI cipher, and tells a forgotten patient nothing', async () => {
    const cipher = createAesGcmPhiCipher({
      keys: createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() }),
    })
    const w = await createWorld({ cipher })
    const a = await w.addSpecialist('spec-a', 1)
    const outbox = inMemoryOutbox()
    const preferences = inMemoryPreferences()
    await preferences.put({ kind: 'practice', practiceId: a }, { channels: { email: 'office@spec-a.test' } })
    const p = createOutboxProjector({ store: w.store, engine: w.engine, outbox, preferences, clock: w.clock })
    await sendWithConsent(w, 'enc-1', { kind: 'direct', practiceId: a })
    await sendWithConsent(w, 'enc-2', { kind: 'direct', practiceId: a })
    // The stored events are sealed: the patient's address is not in the log in the clear.
    const raw = await w.store.readAll({ streamPrefixes: ['referral-'] })()
    if (E.isLeft(raw)) throw new Error('read')
    expect(JSON.stringify(raw.right.map((e) => e.data))).not.toContain('patients.example.test')
    await cipher.forgetPatient(unsafeId('pat-enc-2'))
    for (const e of raw.right) await p.handle(e)
    const targets = (await outbox.list()).map(
      (e) => `${e.notification.payload.referralId} ${e.notification.kind}`,
    )
    expect(targets.sort()).toEqual([
      'enc-1 patient.confirmation',
      'enc-1 recipient.new_referral',
      'enc-2 recipient.new_referral',
    ])
    const patient = (await outbox.list()).find((e) => e.notification.audience === 'patient')
    expect(patient?.address).toEqual({ email: 'canary.enc-1@patients.example.test' })
  })
})
