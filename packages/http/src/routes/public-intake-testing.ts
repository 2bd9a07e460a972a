import {
  type CorrelationId,
  executeCommand,
  type ProgramCommand,
  type ProgramId,
  programAggregate,
  programStreamId,
  type UserId,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import type { RoutesTestApp } from './testing-routes.js'

/** Link codes of the test program (Crockford base32: no I, L, O, U). */
export const CODES = { active: 'AAAA000001', paused: 'PPPP000002', retired: 'RRRR000003' } as const
export const CONSENT_TEXT = 'We use your details only to arrange your care.'
export const DISCLOSURE_TEXT = 'The clinic receives no payment for referrals.'
export const GUIDANCE = {
  faq: [{ question: 'Do I need a letter from my doctor?', answer: 'No: this form is enough.' }],
  insuranceGuidance: 'We accept most public plans; bring your card.',
  schedulingGuidance: 'We call you within two working days to book.',
}

/**
 * A referral program of `clinic` (owner `dr-gp`), created through the engine's program aggregate
 * (not over HTTP): pooled into north/ortho/knee, where spec-a and spec-b take referrals; consent
 * version 1; FAQ, insurance and scheduling guidance; an active, a paused and a retired link.
 */
export const createTestProgram = async (t: RoutesTestApp, programId = 'prog-test') => {
  const owner = await t.engine.directory.resolveActor(unsafeId<UserId>('dr-gp'), [])
  const id = unsafeId<ProgramId>(programId)
  const run = async (payload: Omit<ProgramCommand, 'meta'>) => {
    const r = await executeCommand(
      programAggregate,
      { store: t.engine.store, ids: t.engine.ids },
      programStreamId(id),
      {
        ...payload,
        meta: t.engine.meta({ actor: owner, correlationId: unsafeId<CorrelationId>('test-program') }),
      } as ProgramCommand,
    )()
    if (E.isLeft(r)) throw new Error(`test program: ${r.left.message}`)
  }
  await run({
    type: 'CreateProgram',
    data: {
      programId: id,
      practiceId: unsafeId('clinic'),
      name: 'Knee care pathway',
      target: {
        kind: 'pooled',
        regionId: unsafeId('north'),
        specialtyId: unsafeId('ortho'),
        category: { categoryId: unsafeId('knee') },
      },
    },
  } as Omit<ProgramCommand, 'meta'>)
  await run({
    type: 'PublishConsentVersion',
    data: { consentText: CONSENT_TEXT, disclosureText: DISCLOSURE_TEXT },
  } as Omit<ProgramCommand, 'meta'>)
  await run({ type: 'SetIntakeGuidance', data: { guidance: GUIDANCE } } as Omit<ProgramCommand, 'meta'>)
  for (const [status, code] of Object.entries(CODES)) {
    const linkId = unsafeId(`link-${status}`)
    await run({
      type: 'CreateReferralLink',
      data: { linkId, code, attribution: { channel: 'poster', campaign: status } },
    } as Omit<ProgramCommand, 'meta'>)
    if (status === 'paused')
      await run({ type: 'PauseReferralLink', data: { linkId } } as Omit<ProgramCommand, 'meta'>)
    if (status === 'retired')
      await run({ type: 'RetireReferralLink', data: { linkId } } as Omit<ProgramCommand, 'meta'>)
  }
  return { programId: id, run }
}

/** The form token (intake id) of an intake page. */
export const tokenOf = (html: string): string => {
  const m = /name="token" value="([^"]+)"/.exec(html)
  if (m?.[1] === undefined) throw new Error('no form token on the page')
  return m[1]
}
