import { type Either, left, right } from 'fp-ts/lib/Either.js'
import type { Actor } from '../shared/actor.js'
import type { CommandMeta, Decider } from '../shared/decider.js'
import { absurd, type DomainError, domainError } from '../shared/errors.js'
import type { IncentiveRuleId, IntakeId, PracticeId, ProgramId, ReferralLinkId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import {
  type ConsentVersion,
  type IntakeGuidance,
  type LinkAttribution,
  MAX_FAQ_ENTRIES,
  type ProgramCommandPayload,
  type ProgramCommandType,
  type ProgramEvent,
  type ProgramTarget,
} from './codecs.js'
import {
  evaluateIncentive,
  type GivenAward,
  type IncentiveConversion,
  type IncentiveRefusalReason,
  type IncentiveRule,
  type ReferrerRef,
} from './incentives.js'
import type { LinkCode } from './link-code.js'

/**
 * A program command: payload, metadata and, for `DecideIncentive`, the conversion facts the
 * application layer resolved (`incentiveConversion`); `null` means "no such intake".
 */
export type ProgramCommand = {
  [K in ProgramCommandType]: Extract<ProgramCommandPayload, { type: K }> & {
    readonly meta: CommandMeta
  } & (K extends 'DecideIncentive'
      ? { readonly context: { readonly conversion: IncentiveConversion | null } }
      : { readonly context?: undefined })
}[ProgramCommandType]

export type LinkStatus = 'active' | 'paused' | 'retired'

export interface ProgramLink {
  readonly linkId: ReferralLinkId
  readonly code: LinkCode
  readonly attribution: LinkAttribution
  readonly status: LinkStatus
  readonly createdAt: Instant
}

/** A published consent and disclosure text. Immutable: a change is a new version. */
export interface PublishedConsent {
  readonly version: ConsentVersion
  readonly consentText: string
  readonly disclosureText: string
  readonly publishedAt: Instant
}

export interface ExistingProgram {
  readonly exists: true
  readonly programId: ProgramId
  readonly practiceId: PracticeId
  readonly name: string
  readonly target: ProgramTarget
  /** Oldest first; the last one is the version new intakes agree to. */
  readonly consents: readonly PublishedConsent[]
  /** In creation order; retired links stay, with their history. */
  readonly links: readonly ProgramLink[]
  readonly incentiveRules: readonly IncentiveRule[]
  /** FAQ, insurance and scheduling guidance for the intake page; absent until first set. */
  readonly guidance?: IntakeGuidance
  /** Every award and refusal, oldest first. */
  readonly incentiveDecisions: readonly IncentiveDecision[]
}

export interface IncentiveDecision {
  readonly ruleId: IncentiveRuleId
  readonly intakeId: IntakeId
  readonly outcome: 'awarded' | IncentiveRefusalReason
  readonly referrer: ReferrerRef | null
  readonly decidedAt: Instant
}

export type ProgramState = { readonly exists: false } | ExistingProgram

export const programInitialState: ProgramState = { exists: false }

type Decision = Either<DomainError, readonly ProgramEvent[]>

const emit = (...events: ProgramEvent[]): Decision => right(events)
const unchanged: Decision = right([])
const fail = (code: string, message: string, details?: Record<string, string | number | boolean>): Decision =>
  left(domainError(code, message, details))

const forbidden = (): Decision =>
  fail('program.forbidden', "Only an owner of the program's practice may do this")

/** Owners of the practice manage its programs; memberships are resolved by the application layer. */
export const ownsPractice = (actor: Actor, practiceId: PracticeId): boolean =>
  actor.kind === 'user' && actor.memberships.some((m) => m.practiceId === practiceId && m.role === 'owner')

const sameAttribution = (a: LinkAttribution, b: LinkAttribution): boolean =>
  a.channel === b.channel &&
  a.campaign === b.campaign &&
  a.location === b.location &&
  a.serviceLine === b.serviceLine &&
  a.referringPracticeId === b.referringPracticeId &&
  a.referringPersonId === b.referringPersonId

const trimmedAttribution = (a: LinkAttribution): LinkAttribution => {
  const out: { -readonly [K in keyof LinkAttribution]: LinkAttribution[K] } = {}
  if (a.channel !== undefined) out.channel = a.channel.trim()
  if (a.campaign !== undefined) out.campaign = a.campaign.trim()
  if (a.location !== undefined) out.location = a.location.trim()
  if (a.serviceLine !== undefined) out.serviceLine = a.serviceLine.trim()
  if (a.referringPracticeId !== undefined) out.referringPracticeId = a.referringPracticeId
  if (a.referringPersonId !== undefined) out.referringPersonId = a.referringPersonId
  return out
}

const trimmedGuidance = (g: IntakeGuidance): IntakeGuidance => ({
  faq: g.faq.map((e) => ({ question: e.question.trim(), answer: e.answer.trim() })),
  ...(g.insuranceGuidance === undefined ? {} : { insuranceGuidance: g.insuranceGuidance.trim() }),
  ...(g.schedulingGuidance === undefined ? {} : { schedulingGuidance: g.schedulingGuidance.trim() }),
})

const sameGuidance = (a: IntakeGuidance | undefined, b: IntakeGuidance): boolean =>
  a !== undefined &&
  a.insuranceGuidance === b.insuranceGuidance &&
  a.schedulingGuidance === b.schedulingGuidance &&
  a.faq.length === b.faq.length &&
  a.faq.every((e, i) => e.question === b.faq[i]?.question && e.answer === b.faq[i]?.answer)

const linkNotFound = (): Decision => fail('program.link_not_found', 'No link with this id in this program')
const linkRetired = (): Decision =>
  fail('program.link_retired', 'The link is retired; it keeps its history but cannot change')

const decideOnLink = (
  program: ExistingProgram,
  linkId: ReferralLinkId,
  change: (link: ProgramLink) => Decision,
): Decision => {
  const link = program.links.find((l) => l.linkId === linkId)
  return link === undefined ? linkNotFound() : change(link)
}

const sameRule = (a: IncentiveRule, b: IncentiveRule): boolean =>
  a.ruleId === b.ruleId &&
  a.reward.kind === b.reward.kind &&
  a.reward.description === b.reward.description &&
  a.eligibility.length === b.eligibility.length &&
  a.eligibility.every((c, i) => b.eligibility[i] === c) &&
  a.caps.perReferrer === b.caps.perReferrer &&
  a.caps.perPeriod.days === b.caps.perPeriod.days &&
  a.caps.perPeriod.max === b.caps.perPeriod.max &&
  a.disclosureText === b.disclosureText

const decideDefineRule = (program: ExistingProgram, proposed: IncentiveRule, now: Instant): Decision => {
  const rule: IncentiveRule = {
    ...proposed,
    reward: { kind: proposed.reward.kind, description: proposed.reward.description.trim() },
    eligibility: [...new Set(proposed.eligibility)],
    disclosureText: proposed.disclosureText.trim(),
  }
  if (rule.eligibility.length === 0)
    return fail('program.invalid_rule', 'An incentive rule needs at least one eligibility condition', {
      field: 'rule.eligibility',
    })
  const existing = program.incentiveRules.find((r) => r.ruleId === rule.ruleId)
  if (existing !== undefined)
    return sameRule(existing, rule)
      ? unchanged
      : fail('program.rule_exists', 'An incentive rule with this id exists; rules are never changed')
  return emit({ type: 'IncentiveRuleDefined', data: { programId: program.programId, rule, definedAt: now } })
}

const awardsOf = (program: ExistingProgram): readonly GivenAward[] =>
  program.incentiveDecisions.flatMap((d) =>
    d.outcome === 'awarded' && d.referrer !== null
      ? [{ ruleId: d.ruleId, referrer: d.referrer, awardedAt: d.decidedAt }]
      : [],
  )

/**
 * One conversion under one rule. Every outcome is an event with the rule and the facts, except
 * restating: a conversion already awarded under the rule, or refused again for the same reason,
 * emits nothing (so retries and re-deliveries never award twice).
 */
const decideIncentive = (
  program: ExistingProgram,
  command: Extract<ProgramCommand, { type: 'DecideIncentive' }>,
): Decision => {
  const { ruleId, intakeId } = command.data
  const rule = program.incentiveRules.find((r) => r.ruleId === ruleId)
  if (rule === undefined)
    return fail('program.rule_not_found', 'No incentive rule with this id in this program')
  const { conversion } = command.context
  if (conversion === null) return fail('program.conversion_not_found', 'No intake with this id')
  if (conversion.intakeId !== intakeId || !program.links.some((l) => l.linkId === conversion.linkId))
    return fail('program.context_mismatch', 'The conversion does not belong to this program')
  const previous = program.incentiveDecisions.filter((d) => d.ruleId === ruleId && d.intakeId === intakeId)
  if (previous.some((d) => d.outcome === 'awarded')) return unchanged
  const result = evaluateIncentive(rule, awardsOf(program), conversion, command.meta.now)
  const common = {
    programId: program.programId,
    rule,
    intakeId,
    linkId: conversion.linkId,
    facts: conversion.facts,
    decidedAt: command.meta.now,
  }
  if (result.outcome === 'awarded')
    return emit({
      type: 'IncentiveAwarded',
      data: { ...common, referrer: result.referrer, reason: 'eligible' },
    })
  if (previous.at(-1)?.outcome === result.reason) return unchanged
  return emit({
    type: 'IncentiveRefused',
    data: { ...common, referrer: conversion.referrer, reason: result.reason },
  })
}

const decideExisting = (command: ProgramCommand, program: ExistingProgram): Decision => {
  const { programId } = program
  const now = command.meta.now
  if (command.type === 'CreateProgram')
    return fail('program.already_exists', 'A program with this id already exists')
  // Conversions are decided by the engine as they complete, or by an owner; all else is the owners'.
  const engineDecides = command.type === 'DecideIncentive' && command.meta.actor.kind === 'system'
  if (!engineDecides && !ownsPractice(command.meta.actor, program.practiceId)) return forbidden()
  switch (command.type) {
    case 'PublishConsentVersion': {
      const consentText = command.data.consentText.trim()
      const disclosureText = command.data.disclosureText.trim()
      const current = program.consents.at(-1)
      if (current?.consentText === consentText && current.disclosureText === disclosureText) return unchanged
      return emit({
        type: 'ConsentVersionPublished',
        data: {
          programId,
          version: (program.consents.length + 1) as ConsentVersion,
          consentText,
          disclosureText,
          publishedAt: now,
        },
      })
    }

    case 'CreateReferralLink': {
      const attribution = trimmedAttribution(command.data.attribution)
      const existing = program.links.find((l) => l.linkId === command.data.linkId)
      if (existing !== undefined) {
        // A retried create (same code, same attribution) restates the fact.
        if (existing.code === command.data.code && sameAttribution(existing.attribution, attribution))
          return unchanged
        return fail('program.link_exists', 'A link with this id already exists in this program')
      }
      if (program.links.some((l) => l.code === command.data.code))
        return fail('program.link_code_taken', 'Another link of this program has this code')
      return emit({
        type: 'ReferralLinkCreated',
        data: {
          programId,
          linkId: command.data.linkId,
          code: command.data.code,
          attribution,
          createdAt: now,
        },
      })
    }

    case 'SetIntakeGuidance': {
      const guidance = trimmedGuidance(command.data.guidance)
      if (guidance.faq.length > MAX_FAQ_ENTRIES)
        return fail('program.invalid_guidance', `An intake page has at most ${MAX_FAQ_ENTRIES} FAQ entries`, {
          field: 'guidance.faq',
        })
      if (sameGuidance(program.guidance, guidance)) return unchanged
      return emit({ type: 'IntakeGuidanceSet', data: { programId, guidance, setAt: now } })
    }

    case 'PauseReferralLink':
      return decideOnLink(program, command.data.linkId, (link) => {
        if (link.status === 'retired') return linkRetired()
        if (link.status === 'paused') return unchanged
        return emit({ type: 'ReferralLinkPaused', data: { programId, linkId: link.linkId, pausedAt: now } })
      })

    case 'ResumeReferralLink':
      return decideOnLink(program, command.data.linkId, (link) => {
        if (link.status === 'retired') return linkRetired()
        if (link.status === 'active') return unchanged
        return emit({ type: 'ReferralLinkResumed', data: { programId, linkId: link.linkId, resumedAt: now } })
      })

    case 'RetireReferralLink':
      return decideOnLink(program, command.data.linkId, (link) => {
        if (link.status === 'retired') return unchanged
        return emit({ type: 'ReferralLinkRetired', data: { programId, linkId: link.linkId, retiredAt: now } })
      })

    case 'DefineIncentiveRule':
      return decideDefineRule(program, command.data.rule, now)

    case 'DecideIncentive':
      return decideIncentive(program, command)

    default:
      return absurd(command)
  }
}

/**
 * Business rules of a referral program. Owners of the program's practice manage it (memberships
 * come from the practice stream through the application layer). Consent texts are versioned and
 * never edited: publishing new wording adds a version. A link is active, paused or retired;
 * retiring is final. Incentive rules are defined once and never changed; each conversion is decided
 * under a rule on this stream, so the caps count every award. Restating the current state (pausing a paused link, publishing the current
 * wording again, retrying a link creation) is accepted and emits nothing.
 */
export const decideProgram = (command: ProgramCommand, state: ProgramState): Decision => {
  if (state.exists) return decideExisting(command, state)
  if (command.type !== 'CreateProgram') return fail('program.not_found', 'No program with this id')
  if (!ownsPractice(command.meta.actor, command.data.practiceId)) return forbidden()
  const { programId, practiceId, target } = command.data
  return emit({
    type: 'ProgramCreated',
    data: { programId, practiceId, name: command.data.name.trim(), target, createdAt: command.meta.now },
  })
}

/** Retiring is final: no later event brings a retired link back. */
const withLink = (program: ExistingProgram, linkId: ReferralLinkId, status: LinkStatus): ExistingProgram => ({
  ...program,
  links: program.links.map((l) => (l.linkId === linkId && l.status !== 'retired' ? { ...l, status } : l)),
})

/** Total: events that do not apply to the current state (e.g. before creation) leave it unchanged. */
export const evolveProgram = (state: ProgramState, event: ProgramEvent): ProgramState => {
  if (event.type === 'ProgramCreated') {
    if (state.exists) return state
    const { programId, practiceId, name, target } = event.data
    return {
      exists: true,
      programId,
      practiceId,
      name,
      target,
      consents: [],
      links: [],
      incentiveRules: [],
      incentiveDecisions: [],
    }
  }
  if (!state.exists) return state
  switch (event.type) {
    case 'ConsentVersionPublished': {
      const { programId: _, ...consent } = event.data
      return { ...state, consents: [...state.consents, consent] }
    }
    case 'ReferralLinkCreated': {
      const { linkId, code, attribution, createdAt } = event.data
      return { ...state, links: [...state.links, { linkId, code, attribution, status: 'active', createdAt }] }
    }
    case 'IntakeGuidanceSet':
      return { ...state, guidance: event.data.guidance }
    case 'ReferralLinkPaused':
      return withLink(state, event.data.linkId, 'paused')
    case 'ReferralLinkResumed':
      return withLink(state, event.data.linkId, 'active')
    case 'ReferralLinkRetired':
      return withLink(state, event.data.linkId, 'retired')
    case 'IncentiveRuleDefined':
      return { ...state, incentiveRules: [...state.incentiveRules, event.data.rule] }
    case 'IncentiveAwarded':
    case 'IncentiveRefused': {
      const { rule, intakeId, referrer, decidedAt } = event.data
      const outcome = event.type === 'IncentiveAwarded' ? 'awarded' : event.data.reason
      return {
        ...state,
        incentiveDecisions: [
          ...state.incentiveDecisions,
          { ruleId: rule.ruleId, intakeId, outcome, referrer, decidedAt },
        ],
      }
    }
    default:
      return absurd(event)
  }
}

export const programDecider: Decider<ProgramCommand, ProgramEvent, ProgramState> = {
  decide: decideProgram,
  evolve: evolveProgram,
  initialState: programInitialState,
}
