import {
  ConsentVersion,
  type ExistingProgram,
  FUNNEL_STAGES,
  type Funnel,
  type FunnelStages,
  IncentiveFacts,
  IncentiveRefusalReason,
  IncentiveRule,
  Instant,
  type IntakeEvent,
  IntakeGuidance,
  LinkAttribution,
  LinkCode,
  type LinkFunnel,
  millisOf,
  PracticeId,
  type ProgramEvent,
  ProgramId,
  ProgramTarget,
  ReferralAttribution,
  ReferralLinkId,
} from '@referrals/core'
import * as t from 'io-ts'
import { nameSchema } from '../openapi/io-ts-schema.js'

/**
 * Response shapes of the program routes (`programs.ts`). The management view shows a program as
 * its owners set it up; the funnel and incentive views are for marketing and audit, so they carry
 * counts, attribution and rules only: no PHI and nothing that identifies a person (no intake,
 * patient or referring-person ids).
 */

const nullable = <C extends t.Mixed>(c: C) => t.union([c, t.null])

const LinkStatus = nameSchema(t.keyof({ active: null, paused: null, retired: null }), 'ReferralLinkStatus')

export const ProgramView = nameSchema(
  t.type({
    programId: ProgramId,
    practiceId: PracticeId,
    name: t.string,
    target: nameSchema(ProgramTarget, 'ProgramTarget'),
    /** Every published version, oldest first; the last is the one new intakes agree to. */
    consents: t.array(
      t.type({
        version: ConsentVersion,
        consentText: t.string,
        disclosureText: t.string,
        publishedAt: Instant,
      }),
    ),
    currentConsentVersion: nullable(ConsentVersion),
    links: t.array(
      t.type({
        linkId: ReferralLinkId,
        code: LinkCode,
        /** Where the public intake page of the link is served. */
        path: t.string,
        attribution: nameSchema(LinkAttribution, 'LinkAttribution'),
        status: LinkStatus,
        createdAt: Instant,
      }),
    ),
    incentiveRules: t.array(nameSchema(IncentiveRule, 'IncentiveRule')),
    /** FAQ, insurance and scheduling guidance shown on the intake pages; `null` until first set. */
    guidance: nullable(nameSchema(IntakeGuidance, 'IntakeGuidance')),
    version: t.number,
  }),
  'Program',
)
export type ProgramView = t.TypeOf<typeof ProgramView>

export const programView = (program: ExistingProgram, version: number): ProgramView => ({
  programId: program.programId,
  practiceId: program.practiceId,
  name: program.name,
  target: program.target,
  consents: program.consents.map((c) => ({ ...c })),
  currentConsentVersion: program.consents.at(-1)?.version ?? null,
  links: program.links.map((l) => ({
    linkId: l.linkId,
    code: l.code,
    path: `/r/${l.code}`,
    attribution: l.attribution,
    status: l.status,
    createdAt: l.createdAt,
  })),
  incentiveRules: [...program.incentiveRules],
  guidance: program.guidance ?? null,
  version,
})

export const ProgramList = nameSchema(
  t.type({
    items: t.array(
      t.type({
        programId: ProgramId,
        name: t.string,
        links: t.number,
        activeLinks: t.number,
        version: t.number,
      }),
    ),
  }),
  'ProgramList',
)
export type ProgramList = t.TypeOf<typeof ProgramList>

// ---------------------------------------------------------------- funnel

const StageView = t.type({ count: t.number, firstAt: nullable(Instant), lastAt: nullable(Instant) })
const StagesView = nameSchema(
  t.type(Object.fromEntries(FUNNEL_STAGES.map((s) => [s, StageView])) as Record<string, typeof StageView>),
  'FunnelStages',
)

/**
 * The attribution of a link as the funnel shows it: without a referring person (a per-person id);
 * the exact codec also drops it on encoding, and the core CSV exports have no column for it.
 */
const FunnelAttribution = nameSchema(ReferralAttribution, 'FunnelAttribution')

export const ProgramFunnelView = nameSchema(
  t.type({
    programId: ProgramId,
    links: t.array(
      t.type({
        linkId: ReferralLinkId,
        status: LinkStatus,
        attribution: FunnelAttribution,
        stages: StagesView,
      }),
    ),
    campaigns: t.array(t.type({ campaign: nullable(t.string), links: t.number, stages: StagesView })),
  }),
  'ProgramFunnel',
)
export type ProgramFunnelView = t.TypeOf<typeof ProgramFunnelView>

const noStages = (): FunnelStages =>
  Object.fromEntries(
    FUNNEL_STAGES.map((s) => [s, { count: 0, firstAt: null, lastAt: null }]),
  ) as unknown as FunnelStages

const withoutPerson = (a: LinkAttribution): ReferralAttribution => {
  const { referringPersonId: _, ...rest } = a
  return rest
}

/**
 * The funnel of one program: every link (in creation order; a link nobody opened yet has zero
 * counts) and the campaigns of the links that were opened, from `projectFunnel` over the program's
 * intake events. `linkId` narrows both to one link.
 */
export const programFunnel = (
  program: ExistingProgram,
  projected: Funnel,
  linkId?: ReferralLinkId,
): Funnel => {
  const ofProgram = (l: { readonly programId: ProgramId }) => l.programId === program.programId
  const opened = new Map(projected.links.filter(ofProgram).map((l) => [l.linkId as string, l]))
  const links: LinkFunnel[] = program.links
    .filter((l) => linkId === undefined || l.linkId === linkId)
    .map(
      (l) =>
        opened.get(l.linkId) ?? {
          programId: program.programId,
          linkId: l.linkId,
          attribution: l.attribution,
          stages: noStages(),
        },
    )
  const campaigns =
    linkId === undefined
      ? projected.campaigns.filter(ofProgram)
      : links
          .filter((l) => opened.has(l.linkId))
          .map((l) => ({
            programId: program.programId,
            campaign: l.attribution.campaign ?? null,
            links: 1,
            stages: l.stages,
          }))
  return { links, campaigns }
}

export const programFunnelView = (program: ExistingProgram, funnel: Funnel): ProgramFunnelView => ({
  programId: program.programId,
  links: funnel.links.map((l) => ({
    linkId: l.linkId,
    status: program.links.find((p) => p.linkId === l.linkId)?.status ?? 'active',
    attribution: withoutPerson(l.attribution),
    stages: l.stages,
  })),
  campaigns: funnel.campaigns.map((c) => ({ campaign: c.campaign, links: c.links, stages: c.stages })),
})

// ---------------------------------------------------------------- incentives

export const IncentiveDecisionsView = nameSchema(
  t.type({
    programId: ProgramId,
    /** Per link: awards and refusals. */
    links: t.array(t.type({ linkId: ReferralLinkId, awarded: t.number, refused: t.number })),
    /** Every award and refusal, oldest first, with the rule (as it was) and the facts that decided it. */
    decisions: t.array(
      t.type({
        linkId: ReferralLinkId,
        outcome: t.keyof({ awarded: null, refused: null }),
        reason: t.union([t.literal('eligible'), IncentiveRefusalReason]),
        rule: IncentiveRule,
        facts: IncentiveFacts,
        /** Who the reward is (or would have been) for: a person (never named here), a practice, or nobody. */
        referrerKind: nullable(t.keyof({ person: null, practice: null })),
        referringPracticeId: nullable(PracticeId),
        decidedAt: Instant,
      }),
    ),
  }),
  'IncentiveDecisions',
)
export type IncentiveDecisionsView = t.TypeOf<typeof IncentiveDecisionsView>

export const incentiveDecisionsView = (
  program: ExistingProgram,
  events: readonly ProgramEvent[],
  linkId?: ReferralLinkId,
): IncentiveDecisionsView => {
  const decisions: IncentiveDecisionsView['decisions'] = []
  for (const e of events) {
    if (e.type !== 'IncentiveAwarded' && e.type !== 'IncentiveRefused') continue
    if (linkId !== undefined && e.data.linkId !== linkId) continue
    const referrer = e.data.referrer
    decisions.push({
      linkId: e.data.linkId,
      outcome: e.type === 'IncentiveAwarded' ? 'awarded' : 'refused',
      reason: e.data.reason,
      rule: e.data.rule,
      facts: e.data.facts,
      referrerKind: referrer?.kind ?? null,
      referringPracticeId: referrer?.kind === 'practice' ? referrer.practiceId : null,
      decidedAt: e.data.decidedAt,
    })
  }
  const links = program.links
    .filter((l) => linkId === undefined || l.linkId === linkId)
    .map((l) => {
      const of = decisions.filter((d) => d.linkId === l.linkId)
      return {
        linkId: l.linkId,
        awarded: of.filter((d) => d.outcome === 'awarded').length,
        refused: of.filter((d) => d.outcome === 'refused').length,
      }
    })
  return { programId: program.programId, links, decisions }
}

// ---------------------------------------------------------------- period

/**
 * The cohort of a period: the events of the intakes whose link was opened in [from, to) (every
 * later stage of those intakes, whenever it happened), and the program's incentive decisions for
 * those intakes. The program report reads the funnel and the incentives of one cohort, so an
 * award is never counted without the intake that earned it.
 */
export const cohortOpenedWithin = (
  intakeEvents: readonly IntakeEvent[],
  programEvents: readonly ProgramEvent[],
  from: Instant,
  to: Instant,
): { readonly intakeEvents: readonly IntakeEvent[]; readonly programEvents: readonly ProgramEvent[] } => {
  const start = millisOf(from)
  const end = millisOf(to)
  const cohort = new Set<string>()
  for (const e of intakeEvents) {
    if (e.type !== 'ReferralLinkOpened') continue
    const at = millisOf(e.data.openedAt)
    if (at >= start && at < end) cohort.add(e.data.intakeId)
  }
  return {
    intakeEvents: intakeEvents.filter((e) => cohort.has(e.data.intakeId)),
    programEvents: programEvents.filter(
      (e) => (e.type !== 'IncentiveAwarded' && e.type !== 'IncentiveRefused') || cohort.has(e.data.intakeId),
    ),
  }
}
