import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRoutesTestApp, CANARY_NAME, type RoutesTestApp } from './testing-routes.js'

/**
 * The dashboard in a real headless Chromium (Debian's `/usr/bin/chromium`, or `CHROMIUM_PATH`):
 * served by the app on 127.0.0.1 over demo referrals, with the token typed into its form.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const HAS_CHROMIUM = existsSync(CHROMIUM)
if (!HAS_CHROMIUM)
  console.warn(`dashboard.test.ts: skipped, no Chromium at ${CHROMIUM} (set CHROMIUM_PATH to run it)`)

const SCREENSHOT = fileURLToPath(new URL('../../../../docs/dashboard.png', import.meta.url))

let t: RoutesTestApp
let base: string
let browser: Browser | undefined

beforeAll(async () => {
  if (!HAS_CHROMIUM) return
  t = await buildRoutesTestApp()
  // Eight referrals routed across the pool and four direct to spec-a; some accepted an hour
  // later, two of those with an appointment booked, one declined.
  for (const n of [1, 2, 3, 4, 5, 6, 7, 8])
    await t.ok('gp', 'POST', '/referrals', t.referral(`pd-${n}`, 'pooled'))
  for (const n of [1, 2, 3, 4]) await t.ok('gp', 'POST', '/referrals', t.referral(`dd-${n}`))
  t.clock.advance(3_600_000)
  const answer = async (id: string, action: 'accept' | 'decline') => {
    for (const who of ['spec', 'other'] as const) {
      const body = action === 'accept' ? {} : { reasonCode: 'capacity' }
      if ((await t.call(who, 'POST', `/referrals/${id}/${action}`, body)).statusCode < 300) return who
    }
    throw new Error(`nobody could ${action} ${id}`)
  }
  for (const id of ['pd-1', 'pd-2', 'pd-3', 'dd-1', 'dd-2']) {
    const who = await answer(id, 'accept')
    if (id === 'pd-1' || id === 'dd-1')
      await t.ok(who, 'POST', `/referrals/${id}/appointment`, { at: '2026-04-08T10:00:00.000Z' })
  }
  await answer('dd-3', 'decline')
  base = await t.app.listen({ host: '127.0.0.1', port: 0 })
  browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] })
})

afterAll(async () => {
  await browser?.close()
  await t?.app.close()
})

const consoleErrors = (page: Page): string[] => {
  const errors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text())
  })
  page.on('pageerror', (e) => errors.push(String(e)))
  return errors
}

const openWithToken = async (page: Page, token: string) => {
  await page.goto(`${base}/dashboard`, { waitUntil: 'load' })
  await page.type('#token', token)
  await page.click('#token-form button[type=submit]')
}

const setPeriod = async (page: Page, from: string, to: string) => {
  await page.evaluate(
    (f, tt) => {
      const el = (id: string) => document.getElementById(id) as HTMLInputElement
      el('from').value = f
      el('to').value = tt
      el('to').dispatchEvent(new Event('change'))
    },
    from,
    to,
  )
}

const ready = (page: Page) =>
  page.waitForFunction(
    () => (window as unknown as { dashboard: { state: string } }).dashboard.state === 'ready',
  )

const text = (page: Page, selector: string) => page.$eval(selector, (el) => el.textContent ?? '')

/** Data points of a chart that are numbers, and the canvas pixels that are not blank. */
const chartInk = (page: Page, name: string) =>
  page.evaluate((n) => {
    const chart = (window as unknown as { dashboard: { charts: Record<string, import('chart.js').Chart> } })
      .dashboard.charts[n]
    if (chart === undefined) return { points: 0, pixels: 0 }
    const points = chart.data.datasets.flatMap((d) => d.data).filter((v) => typeof v === 'number').length
    const canvas = chart.canvas
    const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? []
    let pixels = 0
    for (let i = 3; i < data.length; i += 4) if ((data[i] ?? 0) > 0) pixels++
    return { points, pixels }
  }, name)

describe('/dashboard in headless Chromium', () => {
  it.skipIf(!HAS_CHROMIUM)(
    'draws the reports for an admin token, follows the filters, logs no error',
    async () => {
      const page = await (browser as Browser).newPage()
      const errors = consoleErrors(page)
      await page.setViewport({ width: 1200, height: 1400 })
      await openWithToken(page, await t.token({ userId: 'admin', roles: ['admin'] }))
      await setPeriod(page, '2026-03-01', '2026-05-01')
      await ready(page)
      await page.waitForFunction(() => document.getElementById('kpi-sent')?.textContent === '12')
      for (const name of ['funnel', 'timings', 'waits', 'fairness']) {
        const ink = await chartInk(page, name)
        expect(ink.points, name).toBeGreaterThan(0)
        expect(ink.pixels, name).toBeGreaterThan(100)
      }
      // The token is kept for the tab, never put into a URL; no PHI reaches the page.
      expect(await page.evaluate(() => sessionStorage.length)).toBe(1)
      expect(page.url()).toBe(`${base}/dashboard`)
      expect(await page.content()).not.toContain(CANARY_NAME)
      const pools = await page.$$eval('#pool option', (os) => os.map((o) => o.value).filter((v) => v !== ''))
      expect(pools.length).toBeGreaterThan(0)

      await mkdir(dirname(SCREENSHOT), { recursive: true })
      await page.screenshot({ path: SCREENSHOT as `${string}.png`, fullPage: true })

      // A period without referrals: the funnel figure changes to 0.
      await setPeriod(page, '2026-06-01', '2026-07-01')
      await page.waitForFunction(() => document.getElementById('kpi-sent')?.textContent === '0')
      expect((await chartInk(page, 'funnel')).points).toBe(5)
      // Choosing a pool refetches the reports filtered by it (here every referral is in that pool).
      await setPeriod(page, '2026-03-01', '2026-05-01')
      await page.waitForFunction(() => document.getElementById('kpi-sent')?.textContent === '12')
      const requested: string[] = []
      page.on('request', (r) => requested.push(r.url()))
      await page.select('#pool', pools[0] as string)
      await ready(page)
      expect(
        requested.filter((u) => u.includes(`pool=${encodeURIComponent(pools[0] as string)}`)),
      ).toHaveLength(4)
      expect(requested.every((u) => !/token|bearer|eyJ/i.test(u))).toBe(true)
      expect(await text(page, '#kpi-sent')).toBe('12')
      expect(await text(page, '#status')).toBe('')
      expect(errors).toEqual([])
      await page.close()
    },
  )

  it.skipIf(!HAS_CHROMIUM)(
    'shows a clear message for a forbidden scope: network-wide (403) and a practice not the caller’s (404)',
    async () => {
      const page = await (browser as Browser).newPage()
      const errors = consoleErrors(page)
      await openWithToken(page, await t.token({ userId: 'dr-gp', roles: [] }))
      await page.waitForFunction(
        () => (window as unknown as { dashboard: { state: string } }).dashboard.state === 'error',
      )
      expect(await page.$eval('#status', (el) => (el as HTMLElement).hidden)).toBe(false)
      expect(await text(page, '#status')).toMatch(/^Forbidden: .*platform admins and auditors/)
      expect((await chartInk(page, 'funnel')).points).toBe(0)

      await page.type('#practiceId', 'spec-a')
      await page.click('#filters button[type=submit]')
      await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('spec-a'))
      expect(await text(page, '#status')).toContain('not one of your practices')

      // Its own practice loads.
      await page.$eval('#practiceId', (el) => {
        ;(el as HTMLInputElement).value = 'clinic'
      })
      await page.click('#filters button[type=submit]')
      await ready(page)
      expect(await page.$eval('#status', (el) => (el as HTMLElement).hidden)).toBe(true)
      // The browser logs the refused requests themselves; nothing else.
      expect(errors.filter((e) => !/status of 40[34]/.test(e))).toEqual([])
      await page.close()
    },
  )
})
