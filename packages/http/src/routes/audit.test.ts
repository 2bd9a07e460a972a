import { afterEach, describe, expect, it } from 'vitest'
import { buildRoutesTestApp, CANARY_NAME, type RoutesTestApp } from './testing-routes.js'

describe('GET /audit.csv (PHI access log export)', () => {
  let current: RoutesTestApp | undefined
  afterEach(async () => {
    await current?.app.close()
    current = undefined
  })

  it('lists every PHI read in the window for auditors, with filters, and logs the export itself', async () => {
    const t = await buildRoutesTestApp()
    current = t
    await t.ok('gp', 'POST', '/referrals', t.referral('r-1'))
    await t.call('gp', 'GET', '/referrals/r-1', undefined, { 'x-purpose-of-use': 'operations' })
    t.clock.advance(86_400_000)
    await t.call('spec', 'GET', '/referrals/r-1')
    await t.call('stranger', 'GET', '/referrals/r-1')

    const window = 'from=2026-04-01T00:00:00.000Z&to=2026-04-03T00:00:00.000Z'
    const res = await t.call('auditor', 'GET', `/audit.csv?${window}`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toContain('text/csv')
    const lines = res.body.trimEnd().split('\r\n')
    expect(lines[0]).toBe(
      'at,user_id,role,practice_id,referral_id,patient_id,purpose,outcome,channel,resource,correlation_id',
    )
    const rows = lines.slice(1).map((l) => l.split(','))
    expect(rows.map((r) => [r[1], r[3], r[4], r[5], r[6], r[7]])).toEqual([
      ['dr-gp', 'clinic', 'r-1', 'clinic:pat-r-1', 'operations', 'granted'],
      ['dr-spec', 'spec-a', 'r-1', 'clinic:pat-r-1', 'treatment', 'granted'],
      ['stranger', '', 'r-1', 'clinic:pat-r-1', 'treatment', 'denied'],
      // The export is recorded before it is read, so it lists itself.
      ['auditor', '', '', '', 'audit', 'granted'],
    ])
    expect(res.body).not.toContain(CANARY_NAME)

    const onlyDenied = await t.call('auditor', 'GET', `/audit.csv?${window}&userId=stranger`)
    expect(
      onlyDenied.body
        .trimEnd()
        .split('\r\n')
        .slice(1)
        .map((l) => l.split(',')[7]),
    ).toEqual(['denied'])
    const firstDay = await t.call(
      'auditor',
      'GET',
      '/audit.csv?from=2026-04-01T00:00:00.000Z&to=2026-04-02T00:00:00.000Z',
    )
    expect(
      firstDay.body
        .trimEnd()
        .split('\r\n')
        .slice(1)
        .map((l) => l.split(',')[1]),
    ).toEqual(['dr-gp'])

    const again = await t.call('auditor', 'GET', `/audit.csv?${window}`)
    expect(again.body).toContain(',auditor,auditor,,,,audit,granted,api,/audit.csv,')
  })

  it('is for auditors only, and refuses an empty, reversed or over-long window', async () => {
    const t = await buildRoutesTestApp()
    current = t
    const window = 'from=2026-04-01T00:00:00.000Z&to=2026-04-02T00:00:00.000Z'
    for (const who of ['gp', 'admin', 'stranger'] as const)
      expect((await t.call(who, 'GET', `/audit.csv?${window}`)).statusCode).toBe(403)
    expect((await t.call('anonymous', 'GET', `/audit.csv?${window}`)).statusCode).toBe(401)
    for (const bad of [
      'from=2026-04-02T00:00:00.000Z&to=2026-04-01T00:00:00.000Z',
      'from=2026-04-01T00:00:00.000Z&to=2026-04-01T00:00:00.000Z',
      'from=2025-01-01T00:00:00.000Z&to=2026-04-01T00:00:00.000Z',
      'from=yesterday&to=2026-04-01T00:00:00.000Z',
      'to=2026-04-01T00:00:00.000Z',
    ])
      expect((await t.call('auditor', 'GET', `/audit.csv?${bad}`)).statusCode).toBe(400)
  })
})
