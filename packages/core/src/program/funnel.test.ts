import { describe, expect, it } from 'vitest'
import type { Instant } from '../shared/time.js'
import { campaignFunnelCsv, linkFunnelCsv, projectFunnel } from './funnel.js'
import type { IntakeEvent } from './intake-codecs.js'

const at = (day: number) => `2026-03-${String(day).padStart(2, '0')}T10:00:00.000Z` as Instant
const CANARY = 'zqcanarygivenname'

const opened = (intakeId: string, linkId: string, campaign: string | undefined, day: number) =>
  ({
    type: 'ReferralLinkOpened',
    data: {
      intakeId,
      programId: 'prog-1',
      practiceId: 'clinic-1',
      linkId,
      attribution: { channel: 'poster', ...(campaign === undefined ? {} : { campaign }) },
      openedAt: at(day),
    },
  }) as unknown as IntakeEvent
const step = (intakeId: string, type: string, field: string, day: number) =>
  ({ type, data: { intakeId, [field]: at(day) } }) as unknown as IntakeEvent
const submitted = (intakeId: string, day: number) =>
  ({
    type: 'IntakeSubmitted',
    data: {
      intakeId,
      patientId: `patient-of-${intakeId}`,
      phi: { givenName: CANARY },
      submittedAt: at(day),
    },
  }) as unknown as IntakeEvent

/**
 * i1 on link-a (campaign =spring): opened 1, submitted 2, referral sent 3, scheduled 4 and again
 * 6 (rescheduled), completed 9. i2 on link-a: opened 5 only. i3 on link-b (no campaign): opened 2,
 * submitted 2, scheduled 7, no-show 8. An event of an intake that never opened is ignored.
 */
const events: IntakeEvent[] = [
  opened('i1', 'link-a', '=spring', 1),
  submitted('i1', 2),
  opened('i3', 'link-b', undefined, 2),
  submitted('i3', 2),
  step('i1', 'IntakeReferralSent', 'sentAt', 3),
  step('i1', 'IntakeAppointmentScheduled', 'scheduledAt', 4),
  opened('i2', 'link-a', '=spring', 5),
  step('i1', 'IntakeAppointmentScheduled', 'scheduledAt', 6),
  step('i3', 'IntakeAppointmentScheduled', 'scheduledAt', 7),
  step('i3', 'IntakeNoShowRecorded', 'recordedAt', 8),
  step('i1', 'IntakeAppointmentCompleted', 'completedAt', 9),
  step('i9', 'IntakeAppointmentCompleted', 'completedAt', 9),
]

describe('the referral-link funnel (pure projection of intake events)', () => {
  it('counts each intake once per stage it reached, with the first and last time, per link and per campaign', () => {
    const funnel = projectFunnel(events)
    const [a, b] = funnel.links
    expect(a?.linkId).toBe('link-a')
    expect(a?.stages).toEqual({
      opened: { count: 2, firstAt: at(1), lastAt: at(5) },
      submitted: { count: 1, firstAt: at(2), lastAt: at(2) },
      referralSent: { count: 1, firstAt: at(3), lastAt: at(3) },
      scheduled: { count: 1, firstAt: at(4), lastAt: at(6) }, // rescheduled: still one intake
      completed: { count: 1, firstAt: at(9), lastAt: at(9) },
      noShow: { count: 0, firstAt: null, lastAt: null },
    })
    expect(b?.linkId).toBe('link-b')
    expect([
      b?.stages.opened.count,
      b?.stages.submitted.count,
      b?.stages.scheduled.count,
      b?.stages.noShow.count,
    ]).toEqual([1, 1, 1, 1])
    expect(b?.stages.completed.count).toBe(0)
    // Campaigns: the named one first, links without a campaign last.
    expect(funnel.campaigns.map((c) => [c.campaign, c.links, c.stages.opened.count])).toEqual([
      ['=spring', 1, 2],
      [null, 1, 1],
    ])
  })

  it('exports CSV with attribution and stage figures only: no PHI, no intake or patient ids, formulas defused', () => {
    const funnel = projectFunnel(events)
    const links = linkFunnelCsv(funnel)
    const campaigns = campaignFunnelCsv(funnel)
    const rows = links.trimEnd().split('\r\n')
    expect(rows).toHaveLength(3)
    expect(rows[0]?.split(',').slice(0, 9)).toEqual([
      'program_id',
      'link_id',
      'channel',
      'campaign',
      'location',
      'service_line',
      'referring_practice_id',
      'opened',
      'opened_first_at',
    ])
    expect(rows[1]?.startsWith(`prog-1,link-a,poster,'=spring,,,,2,${at(1)},${at(5)},1,`)).toBe(true)
    for (const text of [links, campaigns]) {
      expect(text).not.toContain(CANARY)
      expect(text).not.toMatch(/\bi[123]\b|patient-of/)
    }
    expect(campaigns.trimEnd().split('\r\n')[2]?.startsWith('prog-1,,1,1,')).toBe(true)
  })
})
