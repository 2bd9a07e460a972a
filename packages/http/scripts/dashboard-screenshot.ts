/// <reference lib="dom" />
/**
 * `npm run dashboard:screenshot`: draws the dashboard over the demo data (the demo dataset and six
 * made-up weeks of referrals up to now, as in `dashboard.test.ts`) in Debian's headless Chromium
 * (`/usr/bin/chromium`, or `CHROMIUM_PATH`) and writes `docs/dashboard.png` (or the path given).
 * The token is typed into the page as a person would; nothing leaves 127.0.0.1.
 */
import { mkdir } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Instant } from '@referrals/core'
import puppeteer from 'puppeteer-core'
import { startDemoDashboard } from '../src/dashboard/demo-server.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const out = resolve(
  process.argv[2] ?? fileURLToPath(new URL('../../../docs/dashboard.png', import.meta.url)),
) as `${string}.png`

const end = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString() as Instant
const demo = await startDemoDashboard({ end })
const browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] })
try {
  const page = await browser.newPage()
  await page.setViewport({ width: 1280, height: 900, deviceScaleFactor: 1 })
  await page.goto(`${demo.base}/dashboard`, { waitUntil: 'load' })
  await page.type('#token', await demo.token('demo-admin', ['admin']))
  await page.click('#token-form button[type=submit]')
  await page.waitForFunction(
    () => (window as unknown as { dashboard: { state: string } }).dashboard.state === 'ready',
  )
  await mkdir(dirname(out), { recursive: true })
  await page.screenshot({ path: out, fullPage: true })
  console.log(`${out}: ${demo.referrals} demo referrals`)
} finally {
  await browser.close()
  await demo.close()
}
