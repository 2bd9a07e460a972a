import type { IntakeId, ProgramId, ReferralLinkId } from '../shared/ids.js'
import { type Instant, millisOf } from '../shared/time.js'
import type { LinkAttribution } from './codecs.js'
import type { IntakeEvent } from './intake-codecs.js'

export const FUNNEL_STAGES = [
  'opened',
  'submitted',
  'referralSent',
  'scheduled',
  'completed',
  'noShow',
] as const
export type FunnelStageName = (typeof FUNNEL_STAGES)[number]

/** How many intakes reached a stage, and when the stage was first and last recorded. */
export interface FunnelStage {
  readonly count: number
  readonly firstAt: Instant | null
  readonly lastAt: Instant | null
}
export type FunnelStages = Readonly<Record<FunnelStageName, FunnelStage>>

export interface LinkFunnel {
  readonly programId: ProgramId
  readonly linkId: ReferralLinkId
  /** As copied into the intakes when they opened the link. */
  readonly attribution: LinkAttribution
  readonly stages: FunnelStages
}

export interface CampaignFunnel {
  readonly programId: ProgramId
  /** null: links without a campaign. */
  readonly campaign: string | null
  readonly links: number
  readonly stages: FunnelStages
}

export interface Funnel {
  /** Sorted by program, then link. */
  readonly links: readonly LinkFunnel[]
  /** Sorted by program, then campaign (links without one last). */
  readonly campaigns: readonly CampaignFunnel[]
}

const stageOf = (event: IntakeEvent): { readonly stage: FunnelStageName; readonly at: Instant } => {
  switch (event.type) {
    case 'ReferralLinkOpened':
      return { stage: 'opened', at: event.data.openedAt }
    case 'IntakeSubmitted':
      return { stage: 'submitted', at: event.data.submittedAt }
    case 'IntakeReferralSent':
      return { stage: 'referralSent', at: event.data.sentAt }
    case 'IntakeAppointmentScheduled':
      return { stage: 'scheduled', at: event.data.scheduledAt }
    case 'IntakeAppointmentCompleted':
      return { stage: 'completed', at: event.data.completedAt }
    case 'IntakeNoShowRecorded':
      return { stage: 'noShow', at: event.data.recordedAt }
  }
}

const emptyStages = (): Record<FunnelStageName, FunnelStage> => ({
  opened: { count: 0, firstAt: null, lastAt: null },
  submitted: { count: 0, firstAt: null, lastAt: null },
  referralSent: { count: 0, firstAt: null, lastAt: null },
  scheduled: { count: 0, firstAt: null, lastAt: null },
  completed: { count: 0, firstAt: null, lastAt: null },
  noShow: { count: 0, firstAt: null, lastAt: null },
})

const earlier = (a: Instant | null, b: Instant | null): Instant | null =>
  a === null ? b : b === null || millisOf(a) <= millisOf(b) ? a : b
const later = (a: Instant | null, b: Instant | null): Instant | null =>
  a === null ? b : b === null || millisOf(a) >= millisOf(b) ? a : b

/** `counted`: the first time this intake reached the stage (an intake counts once per stage). */
const record = (stage: FunnelStage, at: Instant, counted: boolean): FunnelStage => ({
  count: stage.count + (counted ? 1 : 0),
  firstAt: earlier(stage.firstAt, at),
  lastAt: later(stage.lastAt, at),
})

const mergeStages = (a: FunnelStages, b: FunnelStages): FunnelStages => {
  const out = emptyStages()
  for (const name of FUNNEL_STAGES) {
    out[name] = {
      count: a[name].count + b[name].count,
      firstAt: earlier(a[name].firstAt, b[name].firstAt),
      lastAt: later(a[name].lastAt, b[name].lastAt),
    }
  }
  return out
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/**
 * The funnel of every link and campaign from intake events (in store order; each intake stream
 * starts with `ReferralLinkOpened`). A stage's count is the number of intakes that reached it, so
 * a rescheduled appointment counts once; its timestamps span every time it was recorded. Counts
 * and attribution only: the projection never reads an event's PHI.
 */
export const projectFunnel = (events: readonly IntakeEvent[]): Funnel => {
  const linkOfIntake = new Map<IntakeId, string>()
  const reached = new Map<IntakeId, Set<FunnelStageName>>()
  const links = new Map<string, { -readonly [K in keyof LinkFunnel]: LinkFunnel[K] }>()
  for (const event of events) {
    const { intakeId } = event.data
    if (event.type === 'ReferralLinkOpened' && !linkOfIntake.has(intakeId)) {
      const key = `${event.data.programId}\u0000${event.data.linkId}`
      linkOfIntake.set(intakeId, key)
      reached.set(intakeId, new Set())
      if (!links.has(key))
        links.set(key, {
          programId: event.data.programId,
          linkId: event.data.linkId,
          attribution: event.data.attribution,
          stages: emptyStages(),
        })
    }
    const key = linkOfIntake.get(intakeId)
    const link = key === undefined ? undefined : links.get(key)
    const stagesReached = reached.get(intakeId)
    if (link === undefined || stagesReached === undefined) continue
    const { stage, at } = stageOf(event)
    const first = !stagesReached.has(stage)
    stagesReached.add(stage)
    link.stages = { ...link.stages, [stage]: record(link.stages[stage], at, first) }
  }
  const linkFunnels = [...links.values()].sort(
    (a, b) => compare(a.programId, b.programId) || compare(a.linkId, b.linkId),
  )
  const campaigns = new Map<string, { -readonly [K in keyof CampaignFunnel]: CampaignFunnel[K] }>()
  for (const link of linkFunnels) {
    const campaign = link.attribution.campaign ?? null
    const key = `${link.programId}\u0000${campaign ?? ''}\u0000${campaign === null ? 'none' : 'named'}`
    const current = campaigns.get(key)
    if (current === undefined)
      campaigns.set(key, { programId: link.programId, campaign, links: 1, stages: link.stages })
    else
      campaigns.set(key, {
        ...current,
        links: current.links + 1,
        stages: mergeStages(current.stages, link.stages),
      })
  }
  const campaignFunnels = [...campaigns.values()].sort(
    (a, b) =>
      compare(a.programId, b.programId) ||
      (a.campaign === null ? 1 : 0) - (b.campaign === null ? 1 : 0) ||
      compare(a.campaign ?? '', b.campaign ?? ''),
  )
  return { links: linkFunnels, campaigns: campaignFunnels }
}

// ---------------------------------------------------------------------------------------------
// CSV export
// ---------------------------------------------------------------------------------------------

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. Attribution is free
 * text typed by staff, so a value a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
 * carriage return first) is prefixed with `'`.
 */
const csvField = (value: string | number | null): string => {
  if (value === null) return ''
  const text = typeof value === 'number' ? String(value) : /^[=+\-@\t\r]/.test(value) ? `'${value}` : value
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

const csv = (rows: readonly (readonly (string | number | null)[])[]): string =>
  rows.map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n'

const stageColumns = FUNNEL_STAGES.flatMap((s) => [s, `${s}_first_at`, `${s}_last_at`])
const stageCells = (stages: FunnelStages): (string | number | null)[] =>
  FUNNEL_STAGES.flatMap((s) => [stages[s].count, stages[s].firstAt, stages[s].lastAt])

/**
 * The per-link funnel as CSV for marketing reports. Columns: program, link, the link's
 * attribution (channel, campaign, location, service line, referring practice) and, per stage, the
 * count and first/last time. No PHI and nothing per person: no intake, patient or referrer ids.
 */
export const linkFunnelCsv = (funnel: Funnel): string =>
  csv([
    [
      'program_id',
      'link_id',
      'channel',
      'campaign',
      'location',
      'service_line',
      'referring_practice_id',
      ...stageColumns,
    ],
    ...funnel.links.map((l) => [
      l.programId,
      l.linkId,
      l.attribution.channel ?? null,
      l.attribution.campaign ?? null,
      l.attribution.location ?? null,
      l.attribution.serviceLine ?? null,
      l.attribution.referringPracticeId ?? null,
      ...stageCells(l.stages),
    ]),
  ])

/** The per-campaign funnel as CSV (links without a campaign in one row with an empty campaign). */
export const campaignFunnelCsv = (funnel: Funnel): string =>
  csv([
    ['program_id', 'campaign', 'links', ...stageColumns],
    ...funnel.campaigns.map((c) => [c.programId, c.campaign, c.links, ...stageCells(c.stages)]),
  ])
