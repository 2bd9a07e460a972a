/// <reference lib="dom" />
// The functions passed to page.evaluate run in the page: they see the DOM.
import { existsSync } from 'node:fs'
import type { Instant } from '@referrals/core'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDemoDashboard } from '../dashboard/demo-server.js'

/**
 * The dashboard in a real headless Chromium (Debian's `/usr/bin/chromium`, or `CHROMIUM_PATH`;
 * never a downloaded browser): the service as `serve --demo` builds it, with the demo dataset and
 * six weeks of its referral history up to now, on 127.0.0.1; the token typed into the page once.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const HAS_CHROMIUM = existsSync(CHROMIUM)
if (!HAS_CHROMIUM)
  console.warn(
    `dashboard.test.ts: the Chromium tests are skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`,
  )

const NORTH_KNEE = 'north:orthopedics:knee:*'

let demo: Awaited<ReturnType<typeof startDemoDashboard>>
let browser: Browser | undefined

beforeAll(async () => {
  if (!HAS_CHROMIUM) return
  // Up to now (to the hour), so the page's default period (the last 90 days) shows all of it.
  const end = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString() as Instant
  demo = await startDemoDashboard({ end })
  browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await demo?.close()
})

/** Console errors and page errors, and the URL of every request the page makes. */
const watch = (page: Page) => {
  const errors: string[] = []
  const requests: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text())
  })
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('request', (r) => requests.push(r.url()))
  return { errors, requests }
}

const state = (page: Page) =>
  page.evaluate(() => (window as unknown as { dashboard: { state: string } }).dashboard.state)

/** Waits until the refresh that `action` starts has finished (the page is `ready` or `error`). */
const settled = async (page: Page, action: () => Promise<unknown>, expected: 'ready' | 'error' = 'ready') => {
  await page.evaluate(() => {
    ;(window as unknown as { dashboard: { state: string } }).dashboard.state = 'waiting'
  })
  await action()
  await page.waitForFunction(
    () =>
      !['waiting', 'loading'].includes(
        (window as unknown as { dashboard: { state: string } }).dashboard.state,
      ),
  )
  expect(await state(page)).toBe(expected)
}

const enterToken = (page: Page, token: string) =>
  settled(page, async () => {
    await page.type('#token', token)
    await page.click('#token-form button[type=submit]')
  })

const setPeriod = (page: Page, from: string, to: string) =>
  settled(page, () =>
    page.evaluate(
      (f, tt) => {
        const el = (id: string) => document.getElementById(id) as HTMLInputElement
        el('from').value = f
        el('to').value = tt
        el('to').dispatchEvent(new Event('change'))
      },
      from,
      to,
    ),
  )

const text = (page: Page, selector: string) => page.$eval(selector, (el) => el.textContent ?? '')

/** Data points of a chart that are numbers, and the canvas pixels that are not blank. */
const chartInk = (page: Page, name: string) =>
  page.evaluate((n) => {
    const chart = (window as unknown as { dashboard: { charts: Record<string, import('chart.js').Chart> } })
      .dashboard.charts[n]
    if (chart === undefined) return { points: 0, pixels: 0, data: [] as unknown[] }
    const data = chart.data.datasets.map((d) => d.data)
    const points = data.flat().filter((v) => typeof v === 'number').length
    const canvas = chart.canvas
    const image = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? []
    let pixels = 0
    for (let i = 3; i < image.length; i += 4) if ((image[i] ?? 0) > 0) pixels++
    return { points, pixels, data }
  }, name)

/** The funnel's `sent` as the report route answers it, for the same filters. */
const sentByApi = async (token: string, query: Record<string, string>) => {
  const res = await fetch(`${demo.base}/reports/funnel?${new URLSearchParams(query)}`, {
    headers: { authorization: `Bearer ${token}` },
  })
  expect(res.status).toBe(200)
  const body = (await res.json()) as { cells: { figures: { sent: number } }[] }
  return body.cells[0]?.figures.sent
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10)

describe('/dashboard in headless Chromium over the demo data', () => {
  it.skipIf(!HAS_CHROMIUM)(
    'draws every chart for an admin token, follows the period and pool filters, keeps the token out of URLs, talks only to 127.0.0.1, logs no error',
    async () => {
      const page = await (browser as Browser).newPage()
      const seen = watch(page)
      await page.setViewport({ width: 1280, height: 1600 })
      const token = await demo.token('demo-admin', ['admin'])
      await page.goto(`${demo.base}/dashboard`, { waitUntil: 'load' })
      expect(await text(page, '#status')).toBe('Enter a bearer token to load the reports.')
      await enterToken(page, token)

      // The default period (the last 90 days) holds the whole demo history.
      expect(Number(await text(page, '#kpi-sent'))).toBe(demo.referrals)
      expect(demo.referrals).toBeGreaterThan(100)
      for (const name of ['funnel', 'timings', 'waits', 'fairness']) {
        const ink = await chartInk(page, name)
        expect(ink.points, name).toBeGreaterThan(0)
        expect(ink.pixels, name).toBeGreaterThan(1000)
      }
      // The funnel never grows from one stage to the next, and starts with every referral.
      const funnel = (await chartInk(page, 'funnel')).data[0] as number[]
      expect(funnel[0]).toBe(demo.referrals)
      for (let i = 1; i < funnel.length; i++) expect(funnel[i]).toBeLessThanOrEqual(funnel[i - 1] as number)
      expect(Number(await text(page, '#kpi-backlog'))).toBeGreaterThan(0)
      expect(await page.$$eval('#waits-table tbody tr', (rows) => rows.length)).toBeGreaterThan(1)

      // Typed once: the field is cleared, the token kept in sessionStorage, and a reload (or
      // another page of this tab) loads the reports without asking again.
      expect(await page.$eval('#token', (el) => (el as HTMLInputElement).value)).toBe('')
      expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([token])
      expect(await page.evaluate(() => localStorage.length)).toBe(0)
      await settled(page, () => page.reload({ waitUntil: 'load' }))
      expect(Number(await text(page, '#kpi-sent'))).toBe(demo.referrals)
      expect(await text(page, '#token-state')).toBe('Token kept for this tab.')

      // A shorter period: fewer referrals, as the report route counts them.
      const now = Date.now()
      const from = isoDay(now - 14 * 86_400_000)
      const to = isoDay(now + 86_400_000)
      await setPeriod(page, from, to)
      const recent = await sentByApi(token, { from: `${from}T00:00:00Z`, to: `${to}T00:00:00Z` })
      expect(recent).toBeGreaterThan(0)
      expect(recent).toBeLessThan(demo.referrals)
      expect(Number(await text(page, '#kpi-sent'))).toBe(recent)
      expect(((await chartInk(page, 'funnel')).data[0] as number[])[0]).toBe(recent)

      // One pool: its figures only, fetched with the pool filter.
      await setPeriod(page, isoDay(now - 90 * 86_400_000), isoDay(now + 86_400_000))
      const pools = await page.$$eval('#pool option', (os) => os.map((o) => o.value).filter((v) => v !== ''))
      expect(pools).toContain(NORTH_KNEE)
      const before = seen.requests.length
      await settled(page, () => page.select('#pool', NORTH_KNEE))
      const poolRequests = seen.requests.slice(before)
      expect(poolRequests.filter((u) => new URL(u).searchParams.get('pool') === NORTH_KNEE)).toHaveLength(4)
      const inPool = Number(await text(page, '#kpi-sent'))
      expect(inPool).toBeGreaterThan(0)
      expect(inPool).toBeLessThan(demo.referrals)
      expect(
        await page.$$eval('#waits-table tbody tr td:first-child', (tds) => tds.map((td) => td.textContent)),
      ).toEqual(['north / orthopedics / knee'])

      // Every request went to this service on 127.0.0.1 (or is a `data:` URL, which never leaves
      // the page: the favicon), none with the token in its URL.
      const network = seen.requests.filter((u) => !u.startsWith('data:'))
      expect(network.length).toBeGreaterThan(10)
      for (const url of seen.requests) {
        if (!url.startsWith('data:')) expect(new URL(url).host).toBe(new URL(demo.base).host)
        expect(url).not.toContain(token)
        expect(url).not.toMatch(/bearer|eyJ/i)
      }
      expect(page.url()).toBe(`${demo.base}/dashboard`)
      expect(await text(page, '#status')).toBe('')
      expect(seen.errors).toEqual([])
      await page.close()
    },
    60_000,
  )

  it.skipIf(!HAS_CHROMIUM)(
    'shows a clear message for a forbidden scope: network-wide (403) and a practice not the caller’s (404)',
    async () => {
      const page = await (browser as Browser).newPage()
      const seen = watch(page)
      await page.goto(`${demo.base}/dashboard`, { waitUntil: 'load' })
      // The demo family doctor: a member of demo-clinic only.
      await settled(
        page,
        async () => {
          await page.type('#token', await demo.token('dr-gp'))
          await page.click('#token-form button[type=submit]')
        },
        'error',
      )
      expect(await page.$eval('#status', (el) => (el as HTMLElement).hidden)).toBe(false)
      expect(await text(page, '#status')).toMatch(/^Forbidden: .*platform admins and auditors/)
      expect((await chartInk(page, 'funnel')).points).toBe(0)

      await settled(
        page,
        async () => {
          await page.type('#practiceId', 'ortho-north-a')
          await page.click('#filters button[type=submit]')
        },
        'error',
      )
      expect(await text(page, '#status')).toBe(
        'Practice "ortho-north-a" is not known to this token: it is not one of your practices.',
      )

      // Its own practice loads: the referrals it sent, which are all of them.
      await settled(page, async () => {
        await page.$eval('#practiceId', (el) => {
          ;(el as HTMLInputElement).value = 'demo-clinic'
        })
        await page.click('#filters button[type=submit]')
      })
      expect(await page.$eval('#status', (el) => (el as HTMLElement).hidden)).toBe(true)
      expect(Number(await text(page, '#kpi-sent'))).toBe(demo.referrals)
      // The browser logs the refused requests themselves; nothing else.
      expect(seen.errors.filter((e) => !/status of 40[34]/.test(e))).toEqual([])
      expect(seen.errors.length).toBeGreaterThan(0)
      await page.close()
    },
    60_000,
  )
})
