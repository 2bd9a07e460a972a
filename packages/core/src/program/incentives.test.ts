import { isLeft, isRight } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { Actor } from '../shared/actor.js'
import { type IncentiveRuleId, type IntakeId, type ReferrerId, unsafeId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { given } from '../testing/given.js'
import { ProgramCommandPayload, type ProgramEvent } from './codecs.js'
import { type ProgramCommand, programDecider } from './decider.js'
import { linkACreated, linkB, metaAt, owner, programCreated, programId, staff, T0, T1 } from './fixtures.js'
import { type IncentiveConversion, IncentiveRewardKind, IncentiveRule } from './incentives.js'

const spec = given(programDecider)
const ruleId = unsafeId<IncentiveRuleId>('book-club')
const ruleOf = (u: unknown): IncentiveRule => {
  const decoded = IncentiveRule.decode(u)
  if (isLeft(decoded)) throw new Error('the test rule does not decode')
  return decoded.right
}
const rule = ruleOf({
  ruleId,
  reward: { kind: 'patient_education', description: 'A free healthy-cooking class' },
  eligibility: ['referral_completed', 'referrer_existing_patient'],
  caps: { perReferrer: 2, perPeriod: { days: 30, max: 3 } },
  disclosureText: 'Thank-you classes are offered whatever the outcome of care.',
})
const ruleDefined: ProgramEvent = { type: 'IncentiveRuleDefined', data: { programId, rule, definedAt: T0 } }
const engine: Actor = { kind: 'system', component: 'incentives' }
const ann = { kind: 'person', referrerId: unsafeId<ReferrerId>('ann') } as const
const bob = { kind: 'person', referrerId: unsafeId<ReferrerId>('bob') } as const
const linkA = linkACreated.type === 'ReferralLinkCreated' ? linkACreated.data.linkId : linkB
const eligible = { referralCompleted: true, referrerIsExistingPatient: true }

const conversion = (
  intake: string,
  referrer: IncentiveConversion['referrer'] = ann,
  facts = eligible,
): IncentiveConversion => ({ intakeId: unsafeId<IntakeId>(intake), linkId: linkA, referrer, facts })

const decide = (
  c: IncentiveConversion | null,
  intake: string = c?.intakeId ?? 'x',
  now: Instant = T1,
  actor: Actor = engine,
) =>
  ({
    type: 'DecideIncentive',
    data: { ruleId, intakeId: unsafeId<IntakeId>(intake) },
    context: { conversion: c },
    meta: metaAt(actor, now),
  }) as ProgramCommand

const awarded = (intake: string, referrer = ann, at: Instant = T1): ProgramEvent => ({
  type: 'IncentiveAwarded',
  data: {
    programId,
    rule,
    intakeId: unsafeId<IntakeId>(intake),
    linkId: linkA,
    referrer,
    facts: eligible,
    reason: 'eligible',
    decidedAt: at,
  },
})
const base = [programCreated, linkACreated, ruleDefined]

describe('the incentive rule codec', () => {
  it('has no cash kind: cash and cash equivalents are rejected', () => {
    for (const kind of ['cash', 'gift_card', 'discount']) {
      expect(isLeft(IncentiveRule.decode({ ...rule, reward: { kind, description: 'x' } }))).toBe(true)
    }
    expect(IncentiveRewardKind.is('cash')).toBe(false)
    expect(Object.keys(IncentiveRewardKind.keys).sort()).toEqual([
      'community_donation',
      'non_cash_gift',
      'patient_education',
      'service_neutral_benefit',
    ])
  })

  it('has no amount: a monetary value is dropped, never stored', () => {
    const decoded = IncentiveRule.decode({ ...rule, reward: { ...rule.reward, amount: 50, currency: 'USD' } })
    expect(isRight(decoded) && decoded.right.reward).toEqual(rule.reward)
  })

  it('needs the disclosure text and both caps', () => {
    const { disclosureText: _, ...noDisclosure } = rule
    expect(isLeft(IncentiveRule.decode(noDisclosure))).toBe(true)
    expect(isLeft(IncentiveRule.decode({ ...rule, disclosureText: '  ' }))).toBe(true)
    expect(isLeft(IncentiveRule.decode({ ...rule, caps: { perReferrer: 2 } }))).toBe(true)
    expect(isLeft(IncentiveRule.decode({ ...rule, caps: { ...rule.caps, perReferrer: 0 } }))).toBe(true)
  })

  it('is what DefineIncentiveRule decodes with', () => {
    const payload = {
      type: 'DefineIncentiveRule',
      data: { rule: { ...rule, reward: { kind: 'cash', description: '$' } } },
    }
    expect(isLeft(ProgramCommandPayload.decode(payload))).toBe(true)
  })
})

describe('DefineIncentiveRule', () => {
  const define = (r: IncentiveRule, actor = owner) =>
    ({ type: 'DefineIncentiveRule', data: { rule: r }, meta: metaAt(actor, T0) }) as ProgramCommand

  it('lets an owner define a rule; defining it again is a no-op, changing it is refused', () => {
    spec([programCreated]).when(define(rule)).thenEmits([ruleDefined])
    spec([programCreated, ruleDefined]).when(define(rule)).thenEmits([])
    spec([programCreated, ruleDefined])
      .when(define(ruleOf({ ...rule, caps: { ...rule.caps, perReferrer: 5 } })))
      .thenFails('program.rule_exists')
  })

  it('needs an eligibility condition and an owner', () => {
    spec([programCreated])
      .when(define({ ...rule, eligibility: [] }))
      .thenFails('program.invalid_rule')
    spec([programCreated]).when(define(rule, staff)).thenFails('program.forbidden')
  })
})

describe('DecideIncentive', () => {
  it('awards an eligible conversion, with the rule, facts and reason in the event', () => {
    spec(base)
      .when(decide(conversion('i1')))
      .thenEmits([awarded('i1')])
  })

  it('refuses with the reason of the first unmet condition, and records the refusal', () => {
    spec(base)
      .when(decide(conversion('i1', ann, { referralCompleted: false, referrerIsExistingPatient: false })))
      .thenEmits([
        {
          type: 'IncentiveRefused',
          data: {
            programId,
            rule,
            intakeId: unsafeId<IntakeId>('i1'),
            linkId: linkA,
            referrer: ann,
            facts: { referralCompleted: false, referrerIsExistingPatient: false },
            reason: 'referral_not_completed',
            decidedAt: T1,
          },
        },
      ])
    const state = spec(base)
      .when(decide(conversion('i1', ann, { referralCompleted: true, referrerIsExistingPatient: false })))
      .state()
    expect(state.exists && state.incentiveDecisions.map((d) => d.outcome)).toEqual([
      'referrer_not_existing_patient',
    ])
    const noReferrer = spec(base)
      .when(decide(conversion('i1', null)))
      .state()
    expect(state.exists && noReferrer.exists && noReferrer.incentiveDecisions[0]?.outcome).toBe('no_referrer')
  })

  it('never awards one conversion twice; the same refusal is not repeated; a refusal can be followed by an award', () => {
    spec([...base, awarded('i1')])
      .when(decide(conversion('i1')))
      .thenEmits([])
    const notCompleted = { referralCompleted: false, referrerIsExistingPatient: true }
    const refused: ProgramEvent = {
      type: 'IncentiveRefused',
      data: {
        programId,
        rule,
        intakeId: unsafeId<IntakeId>('i1'),
        linkId: linkA,
        referrer: ann,
        facts: notCompleted,
        reason: 'referral_not_completed',
        decidedAt: T1,
      },
    }
    spec(base)
      .when(decide(conversion('i1', ann, notCompleted)))
      .thenEmits([refused])
    spec([...base, refused])
      .when(decide(conversion('i1', ann, notCompleted)))
      .thenEmits([])
    spec([...base, refused])
      .when(decide(conversion('i1')))
      .thenEmits([awarded('i1')])
  })

  const refusal = (intake: string, referrer: typeof ann, reason: string, at: Instant = T1): ProgramEvent =>
    ({
      type: 'IncentiveRefused',
      data: {
        programId,
        rule,
        intakeId: unsafeId<IntakeId>(intake),
        linkId: linkA,
        referrer,
        facts: eligible,
        reason,
        decidedAt: at,
      },
    }) as ProgramEvent

  it('holds the per-referrer cap (2), for that referrer only', () => {
    spec([...base, awarded('i1'), awarded('i2')])
      .when(decide(conversion('i3')))
      .thenEmits([refusal('i3', ann, 'per_referrer_cap_reached')])
    spec([...base, awarded('i1'), awarded('i2')])
      .when(decide(conversion('i3', bob)))
      .thenEmits([awarded('i3', bob)])
  })

  it('holds the per-period cap (3 in a rolling 30 days): an award exactly 30 days old no longer counts', () => {
    const carl = { kind: 'person', referrerId: unsafeId<ReferrerId>('carl') } as const
    const dan = { kind: 'person', referrerId: unsafeId<ReferrerId>('dan') } as const
    const three = [...base, awarded('i1', ann), awarded('i2', bob), awarded('i3', carl)]
    const later = (ms: number) => new Date(Date.parse(T1) + ms).toISOString() as Instant
    const thirtyDays = 30 * 86_400_000
    spec(three)
      .when(decide(conversion('i4', dan), 'i4', later(thirtyDays - 1)))
      .thenEmits([refusal('i4', dan, 'period_cap_reached', later(thirtyDays - 1))])
    spec(three)
      .when(decide(conversion('i4', dan), 'i4', later(thirtyDays)))
      .thenEmits([awarded('i4', dan, later(thirtyDays))])
  })

  it('counts awards only: refusals do not use up a cap', () => {
    spec([...base, awarded('i1'), refusal('i2', ann, 'referral_not_completed')])
      .when(decide(conversion('i3')))
      .thenEmits([awarded('i3')])
  })

  it('is decided by the engine or an owner; needs the rule, the conversion and a conversion of this program', () => {
    spec(base)
      .when(decide(conversion('i1'), 'i1', T1, staff))
      .thenFails('program.forbidden')
    spec(base)
      .when(decide(conversion('i1'), 'i1', T1, owner))
      .thenEmits([awarded('i1')])
    spec([programCreated, linkACreated])
      .when(decide(conversion('i1')))
      .thenFails('program.rule_not_found')
    spec(base).when(decide(null, 'i1')).thenFails('program.conversion_not_found')
    spec(base)
      .when(decide(conversion('i1'), 'i2'))
      .thenFails('program.context_mismatch')
    spec(base)
      .when(decide({ ...conversion('i1'), linkId: linkB }))
      .thenFails('program.context_mismatch')
  })
})
