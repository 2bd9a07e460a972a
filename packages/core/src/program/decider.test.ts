import { describe, expect, it } from 'vitest'
import type { Actor } from '../shared/actor.js'
import { type ReferrerId, unsafeId } from '../shared/ids.js'
import { given } from '../testing/given.js'
import type { ConsentVersion, ProgramCommandPayload, ProgramEvent } from './codecs.js'
import { type ProgramCommand, programDecider } from './decider.js'
import {
  admin,
  codeA,
  codeB,
  consentV1,
  linkA,
  linkACreated,
  linkB,
  metaAt,
  owner,
  practiceId,
  programCreated,
  programId,
  publicIntake,
  staff,
  T0,
  T1,
  target,
} from './fixtures.js'
import { currentConsent, linkOf } from './views.js'

const by = (actor: Actor, payload: ProgramCommandPayload, now = T1): ProgramCommand =>
  ({ ...payload, meta: metaAt(actor, now) }) as ProgramCommand

const spec = given(programDecider)

const create = {
  type: 'CreateProgram',
  data: { programId, practiceId, name: ' New patients ', target },
} as const

describe('CreateProgram', () => {
  it('lets an owner of the practice create a program, time-stamped from the command', () => {
    spec([])
      .when(by(owner, create, T0))
      .thenEmits([programCreated])
  })

  it('forbids staff, platform admins and the system', () => {
    for (const actor of [staff, admin, publicIntake])
      spec([]).when(by(actor, create)).thenFails('program.forbidden')
  })

  it('refuses a second creation', () => {
    spec([programCreated]).when(by(owner, create)).thenFails('program.already_exists')
  })

  it('other commands need the program', () => {
    spec([])
      .when(by(owner, { type: 'PauseReferralLink', data: { linkId: linkA } }))
      .thenFails('program.not_found')
  })
})

describe('PublishConsentVersion', () => {
  const publish = (
    consentText: string,
    disclosureText = 'North Clinic, 1 Main St. General scheduling only.',
  ) => ({ type: 'PublishConsentVersion', data: { consentText, disclosureText } }) as const

  it('numbers versions 1, 2, … and keeps every published text', () => {
    spec([programCreated])
      .when(by(owner, publish('I agree to be contacted about scheduling.'), T0))
      .thenEmits([consentV1])
    const state = spec([programCreated, consentV1])
      .when(by(owner, publish('I agree to be contacted by email.')))
      .state()
    expect(state.exists && state.consents.map((c) => [c.version, c.consentText])).toEqual([
      [1, 'I agree to be contacted about scheduling.'],
      [2, 'I agree to be contacted by email.'],
    ])
    expect(currentConsent(state)?.version).toBe(2)
  })

  it('publishing the current wording again is a no-op; an older wording becomes a new version', () => {
    spec([programCreated, consentV1])
      .when(by(owner, publish(' I agree to be contacted about scheduling. ')))
      .thenEmits([])
    const v2: ProgramEvent = {
      type: 'ConsentVersionPublished',
      data: {
        programId,
        version: 2 as ConsentVersion,
        consentText: 'Other',
        disclosureText: 'D',
        publishedAt: T0,
      },
    }
    spec([programCreated, consentV1, v2])
      .when(by(owner, publish('I agree to be contacted about scheduling.')))
      .thenEmits([
        {
          type: 'ConsentVersionPublished',
          data: {
            programId,
            version: 3 as ConsentVersion,
            consentText: 'I agree to be contacted about scheduling.',
            disclosureText: 'North Clinic, 1 Main St. General scheduling only.',
            publishedAt: T1,
          },
        },
      ])
  })

  it('is for owners only', () => {
    spec([programCreated])
      .when(by(staff, publish('x')))
      .thenFails('program.forbidden')
  })
})

describe('CreateReferralLink', () => {
  const createLink = (linkId = linkA, code = codeA) =>
    ({
      type: 'CreateReferralLink',
      data: {
        linkId,
        code,
        attribution: { channel: ' word-of-mouth ', campaign: 'spring', serviceLine: 'dermatology' },
      },
    }) as const

  it('creates an active link with its code and trimmed attribution', () => {
    spec([programCreated])
      .when(by(owner, createLink(), T0))
      .thenEmits([linkACreated])
    const state = spec([programCreated]).when(by(owner, createLink())).state()
    expect(linkOf(state, linkA)?.status).toBe('active')
  })

  it('a retried creation is a no-op; the same id with another code is refused', () => {
    spec([programCreated, linkACreated]).when(by(owner, createLink())).thenEmits([])
    spec([programCreated, linkACreated])
      .when(by(owner, createLink(linkA, codeB)))
      .thenFails('program.link_exists')
  })

  it('refuses a code another link of the program has', () => {
    spec([programCreated, linkACreated])
      .when(by(owner, createLink(linkB, codeA)))
      .thenFails('program.link_code_taken')
  })

  it('records a referring person by pseudonymous id', () => {
    const referringPersonId = unsafeId<ReferrerId>('ref-7')
    spec([programCreated])
      .when(
        by(owner, {
          type: 'CreateReferralLink',
          data: { linkId: linkB, code: codeB, attribution: { referringPersonId } },
        }),
      )
      .thenEmits([
        {
          type: 'ReferralLinkCreated',
          data: { programId, linkId: linkB, code: codeB, attribution: { referringPersonId }, createdAt: T1 },
        },
      ])
  })

  it('is for owners only', () => {
    spec([programCreated]).when(by(staff, createLink())).thenFails('program.forbidden')
  })
})

describe('link lifecycle', () => {
  const pause = { type: 'PauseReferralLink', data: { linkId: linkA } } as const
  const resume = { type: 'ResumeReferralLink', data: { linkId: linkA } } as const
  const retire = { type: 'RetireReferralLink', data: { linkId: linkA } } as const
  const paused: ProgramEvent = {
    type: 'ReferralLinkPaused',
    data: { programId, linkId: linkA, pausedAt: T1 },
  }
  const retired: ProgramEvent = {
    type: 'ReferralLinkRetired',
    data: { programId, linkId: linkA, retiredAt: T1 },
  }

  it('pauses and resumes; restating is a no-op', () => {
    spec([programCreated, linkACreated]).when(by(owner, pause)).thenEmits([paused])
    spec([programCreated, linkACreated, paused]).when(by(owner, pause)).thenEmits([])
    spec([programCreated, linkACreated, paused])
      .when(by(owner, resume))
      .thenEmits([{ type: 'ReferralLinkResumed', data: { programId, linkId: linkA, resumedAt: T1 } }])
    spec([programCreated, linkACreated]).when(by(owner, resume)).thenEmits([])
  })

  it('retiring is final and keeps the link (with its code and attribution) in the program', () => {
    spec([programCreated, linkACreated, paused]).when(by(owner, retire)).thenEmits([retired])
    spec([programCreated, linkACreated, retired]).when(by(owner, retire)).thenEmits([])
    spec([programCreated, linkACreated, retired]).when(by(owner, resume)).thenFails('program.link_retired')
    spec([programCreated, linkACreated, retired]).when(by(owner, pause)).thenFails('program.link_retired')
    const state = spec([programCreated, linkACreated]).when(by(owner, retire)).state()
    expect(linkOf(state, linkA)).toEqual({
      linkId: linkA,
      code: codeA,
      attribution: { channel: 'word-of-mouth', campaign: 'spring', serviceLine: 'dermatology' },
      status: 'retired',
      createdAt: T0,
    })
  })

  it('a resume recorded after a retirement does not bring the link back', () => {
    const resumed: ProgramEvent = {
      type: 'ReferralLinkResumed',
      data: { programId, linkId: linkA, resumedAt: T1 },
    }
    const state = programDecider.evolve(
      [programCreated, linkACreated, retired].reduce(programDecider.evolve, programDecider.initialState),
      resumed,
    )
    expect(linkOf(state, linkA)?.status).toBe('retired')
  })

  it('unknown links and non-owners are refused', () => {
    spec([programCreated]).when(by(owner, pause)).thenFails('program.link_not_found')
    spec([programCreated, linkACreated]).when(by(staff, retire)).thenFails('program.forbidden')
  })
})

describe('SetIntakeGuidance', () => {
  const guidance = {
    faq: [{ question: ' Do I need a referral letter? ', answer: 'No: this form is enough.' }],
    insuranceGuidance: 'Bring your insurance card. ',
    schedulingGuidance: 'We call within two working days.',
  }
  const set = { type: 'SetIntakeGuidance', data: { guidance } } as unknown as ProgramCommandPayload
  const guidanceSet = {
    type: 'IntakeGuidanceSet',
    data: {
      programId,
      guidance: {
        faq: [{ question: 'Do I need a referral letter?', answer: 'No: this form is enough.' }],
        insuranceGuidance: 'Bring your insurance card.',
        schedulingGuidance: 'We call within two working days.',
      },
      setAt: T1,
    },
  } as unknown as ProgramEvent

  it('lets an owner set the FAQ, insurance and scheduling guidance (trimmed); the state holds it', () => {
    const outcome = spec([programCreated]).when(by(owner, set))
    outcome.thenEmits([guidanceSet])
    const state = outcome.state()
    expect(state.exists && state.guidance?.faq[0]?.question).toBe('Do I need a referral letter?')
  })

  it('restating the same guidance emits nothing; staff may not set it', () => {
    spec([programCreated, guidanceSet]).when(by(owner, set)).thenEmits([])
    spec([programCreated]).when(by(staff, set)).thenFails('program.forbidden')
  })

  it('refuses more than 20 FAQ entries', () => {
    const many = {
      type: 'SetIntakeGuidance',
      data: { guidance: { faq: Array.from({ length: 21 }, () => ({ question: 'Q?', answer: 'A.' })) } },
    } as unknown as ProgramCommandPayload
    spec([programCreated]).when(by(owner, many)).thenFails('program.invalid_guidance')
  })
})
