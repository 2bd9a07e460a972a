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

  it('authorizes before it validates: a non-auditor gets 403 with or without valid parameters, never 400', async () => {
    const t = await buildRoutesTestApp()
    current = t
    for (const query of ['', '?from=yesterday', '?from=2026-04-02T00:00:00Z&to=2026-04-01T00:00:00Z'])
      for (const who of ['gp', 'admin'] as const)
        expect([who, query, (await t.call(who, 'GET', `/audit.csv${query}`)).statusCode]).toEqual([
          who,
          query,
          403,
        ])
    expect((await t.call('auditor', 'GET', '/audit.csv')).statusCode).toBe(400)
  })

  it('takes any RFC 3339 instant for from/to (no fraction, any fraction, an offset) and reads the same window', async () => {
    const t = await buildRoutesTestApp()
    current = t
    await t.ok('gp', 'POST', '/referrals', t.referral('r-1'))
    await t.call('gp', 'GET', '/referrals/r-1')
    const rowsOf = async (window: string) => {
      const res = await t.call('auditor', 'GET', `/audit.csv?${window}`)
      expect([window, res.statusCode]).toEqual([window, 200])
      return res.body
        .trimEnd()
        .split('\r\n')
        .slice(1)
        .map((l) => l.split(',').slice(1, 8).join(','))
        .filter((l) => !l.startsWith('auditor'))
    }
    const exact = await rowsOf('from=2026-04-01T00:00:00.000Z&to=2026-04-02T00:00:00.000Z')
    expect(exact.length).toBeGreaterThan(0)
    for (const window of [
      'from=2026-04-01T00:00:00Z&to=2026-04-02T00:00:00Z',
      'from=2026-04-01T00:00:00.0Z&to=2026-04-02T00:00:00.000000Z',
      `from=${encodeURIComponent('2026-04-01T02:00:00+02:00')}&to=${encodeURIComponent('2026-04-01T19:00:00-05:00')}`,
    ])
      expect(await rowsOf(window)).toEqual(exact)
    for (const bad of ['2026-04-01', '2026-04-31T00:00:00Z', '2026-04-01T24:00:00Z', '2026-04-01T00:00:00'])
      expect(
        (await t.call('auditor', 'GET', `/audit.csv?from=${bad}&to=2026-04-02T00:00:00Z`)).statusCode,
      ).toBe(400)
  })
})
