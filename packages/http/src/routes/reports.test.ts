import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRoutesTestApp, CANARY_NAME, type RoutesTestApp } from './testing-routes.js'

const PERIOD = 'from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z'
let t: RoutesTestApp

beforeAll(async () => {
  t = await buildRoutesTestApp()
  // Six direct referrals to spec-a, one accepted an hour later.
  for (const n of [1, 2, 3, 4, 5, 6]) await t.ok('gp', 'POST', '/referrals', t.referral(`rp-${n}`))
  t.clock.advance(3_600_000)
  await t.ok('spec', 'POST', '/referrals/rp-1/accept', {})
})
afterAll(async () => {
  await t.app.close()
})

describe('/reports', () => {
  it('funnel for the sending practice: counts of the facts rows', async () => {
    const res = await t.ok('gp', 'GET', `/reports/funnel?practiceId=clinic&${PERIOD}`)
    const body = res.json()
    expect(body.cells).toHaveLength(1)
    // 6 sent and delivered (direct), 1 accepted: counted by hand from the setup above.
    expect(body.cells[0]).toMatchObject({
      referrals: 6,
      suppressed: false,
      figures: { sent: 6, delivered: 6, accepted: 1 },
    })
    expect(res.body).not.toContain(CANARY_NAME)
  })

  it('timings: one acceptance after one hour', async () => {
    const body = (await t.ok('spec', 'GET', `/reports/timings?practiceId=spec-a&${PERIOD}`)).json()
    expect(body.cells[0].figures.timeToAccept).toEqual({ n: 1, p50: 1, p90: 1 })
  })

  it('a cell of 5 or more referrals is shown to a platform caller (suppression itself: core reports.test.ts)', async () => {
    const body = (await t.ok('admin', 'GET', `/reports/funnel?groupBy=urgency&${PERIOD}`)).json()
    expect(body.cells[0]).toMatchObject({ group: { urgency: 'routine' }, referrals: 6, suppressed: false })
    expect(body.suppressionThreshold).toBe(5)
  })

  it('CSV with format=csv or Accept: text/csv', async () => {
    const res = await t.ok('gp', 'GET', `/reports/funnel?practiceId=clinic&format=csv&${PERIOD}`)
    expect(res.headers['content-type']).toContain('text/csv')
    expect(res.body.split('\r\n')[0]).toContain('figures.sent')
    const viaAccept = await t.call('gp', 'GET', `/reports/funnel?practiceId=clinic&${PERIOD}`, undefined, {
      accept: 'text/csv',
    })
    expect(viaAccept.headers['content-type']).toContain('text/csv')
  })

  it('network-wide figures are for admins and auditors; bad input is a 400', async () => {
    expect((await t.call('gp', 'GET', `/reports/funnel?${PERIOD}`)).statusCode).toBe(403)
    expect((await t.call('auditor', 'GET', `/reports/fairness?${PERIOD}`)).statusCode).toBe(200)
    expect(
      (await t.call('admin', 'GET', '/reports/funnel?from=2026-13-01T00:00:00Z&to=2026-12-01T00:00:00Z'))
        .statusCode,
    ).toBe(400)
    expect((await t.call('admin', 'GET', `/reports/funnel?groupBy=patient&${PERIOD}`)).statusCode).toBe(400)
    expect(
      (await t.call('admin', 'GET', '/reports/funnel?from=2026-12-01T00:00:00Z&to=2026-01-01T00:00:00Z'))
        .statusCode,
    ).toBe(400)
  })
})
