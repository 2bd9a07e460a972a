/**
 * Embedding the engine: the pure core with the in-memory store, walking one "choose for me"
 * referral from send to complete, then printing its history. Run it with
 *
 *   npx tsx --conditions=@referrals/source examples/in-memory-referral.ts
 */
import {
  type Actor,
  type CorrelationId,
  createEngine,
  createInMemoryEventStore,
  type Fte,
  type Instant,
  manualClock,
  type PracticeId,
  type ReferralId,
  type SpecialtyId,
  sequentialUuids,
  type UserId,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'

export const runExample = async (print: (line: string) => void = console.log): Promise<readonly string[]> => {
  // Ports: a clock and an id generator. A manual clock makes the run identical on every machine.
  const clock = manualClock('2026-05-04T09:00:00.000Z' as Instant)
  const store = createInMemoryEventStore({ clock })
  // Pooled referrals are routed by the engine itself, in the command that needs it.
  const engine = createEngine({ store, clock, ids: sequentialUuids() })

  const id = unsafeId
  const ortho = id<SpecialtyId>('orthopedics')
  const clinic = id<PracticeId>('lakeside-clinic')
  const specialist = id<PracticeId>('dr-knee-practice')
  const referralId = id<ReferralId>('ref-0001')
  const correlationId = id<CorrelationId>('example')
  const as = async (userId: string, roles: readonly ('admin' | 'auditor')[] = []) => ({
    actor: (await engine.directory.resolveActor(id<UserId>(userId), roles)) as Actor,
    correlationId,
  })
  const step = async (
    label: string,
    task: () => Promise<E.Either<{ readonly message: string }, unknown>>,
  ) => {
    const r = await task()
    if (E.isLeft(r)) throw new Error(`${label}: ${r.left.message}`)
    clock.advance(15 * 60_000)
  }

  const admin = await as('admin', ['admin'])
  await step(
    'define specialty',
    engine.catalog.execute(
      ortho,
      { type: 'DefineSpecialty', data: { specialtyId: ortho, name: 'Orthopedics' } },
      admin,
    ),
  )
  await step(
    'add category',
    engine.catalog.execute(
      ortho,
      { type: 'ProposeCategory', data: { categoryId: id('knee'), name: 'Knee' } },
      admin,
    ),
  )
  await step(
    'create clinic',
    engine.practices.execute(
      clinic,
      { type: 'CreatePractice', data: { practiceId: clinic, name: 'Lakeside Clinic', kind: 'clinic' } },
      await as('dr-gp'),
    ),
  )
  await step(
    'create specialist',
    engine.practices.execute(
      specialist,
      { type: 'CreatePractice', data: { practiceId: specialist, name: 'Knee Practice', kind: 'specialist' } },
      await as('dr-knee'),
    ),
  )
  await step(
    'configure specialist',
    engine.practices.execute(
      specialist,
      {
        type: 'ConfigureSpecialist',
        data: {
          specialtyId: ortho,
          regions: [id('north')],
          categories: [{ categoryId: id('knee') }],
          fte: 1 as Fte,
          insuranceNetworks: [],
          preferredProviderListed: true,
        },
      },
      await as('dr-knee'),
    ),
  )
  await step(
    'verify specialist',
    engine.practices.execute(specialist, { type: 'VerifyPractice', data: {} }, admin),
  )

  const gp = await as('dr-gp')
  const knee = await as('dr-knee')
  await step(
    'send (choose for me)',
    engine.referrals.execute(
      referralId,
      {
        type: 'SendReferral',
        data: {
          referralId,
          senderPracticeId: clinic,
          patientId: id('patient-42'),
          phi: {
            patient: { givenName: 'Sam', familyName: 'Sample', dateOfBirth: '1960-02-29' },
            reason: 'Knee pain on stairs for three months.',
          },
          specialtyId: ortho,
          category: { categoryId: id('knee') },
          regionId: id('north'),
          urgency: 'routine',
          target: { kind: 'pooled' },
        },
      },
      gp,
    ),
  )
  await step('accept', engine.referrals.execute(referralId, { type: 'AcceptReferral', data: {} }, knee))
  await step(
    'schedule',
    engine.referrals.execute(
      referralId,
      { type: 'ScheduleAppointment', data: { at: '2026-05-20T14:30:00.000Z' as Instant } },
      knee,
    ),
  )
  await step(
    'complete',
    engine.referrals.execute(
      referralId,
      { type: 'CompleteReferral', data: { phi: { outcomeNote: 'Physiotherapy plan sent back.' } } },
      knee,
    ),
  )

  const loaded = await engine.referrals.load(referralId)()
  if (E.isLeft(loaded)) throw new Error(loaded.left.message)
  const lines = loaded.right.stored.map((s) => {
    const actor =
      s.metadata.actor.kind === 'user' ? s.metadata.actor.userId : `system:${s.metadata.actor.component}`
    return `${s.version}. ${s.recordedAt}  ${s.type.padEnd(20)} by ${actor}`
  })
  print(
    `History of ${referralId} (status: ${loaded.right.state.exists ? loaded.right.state.status : 'none'}):`,
  )
  for (const line of lines) print(line)
  return lines
}

if (import.meta.url === `file://${process.argv[1]}`) await runExample()
