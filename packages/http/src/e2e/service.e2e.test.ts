/**
 * End-to-end: the real service (`referrals serve --demo`, built CLI, embedded PostgreSQL in a fresh
 * data directory) driven over HTTP on 127.0.0.1.
 *
 * 1. A choose-for-me referral goes from send to complete; the pooled routing must pick one of the
 *    demo specialists serving the north region.
 * 2. Four clients send referrals concurrently; the server process is SIGKILLed mid-load. The
 *    embedded PostgreSQL it started survives its parent (it runs in the same process group): the
 *    test kills that orphan too (a crash of the whole service), which leaves a stale
 *    `postmaster.pid`. The service restarts on the same data directory, and every referral whose
 *    201 reached a client is read back (200).
 * 3. After a graceful stop (SIGTERM, exit 0, database stopped), `referrals verify` checks every
 *    stream's hash chain and exits 0.
 *
 * Needs `packages/http/dist` (the test command runs `npm run build` first).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createConfig, lintFromString } from '@redocly/openapi-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

/** The demo specialists whose regions include `north`, and their owners (see `demo.ts`). */
const NORTH_SPECIALISTS: Readonly<Record<string, string>> = {
  'ortho-north-a': 'dr-north-a',
  'ortho-north-b': 'dr-north-b',
  'ortho-both-c': 'dr-both-c',
}
const SENDER = 'dr-gp'
const LOAD_CLIENTS = 4
/**
 * The kill comes after KILL_AFTER_MS, later if fewer than WANT_ACKED referrals were acknowledged by
 * then, at the latest after LOAD_MAX_MS.
 */
const KILL_AFTER_MS = 2_500
const LOAD_MAX_MS = 8_000
const WANT_ACKED = 20
const MIN_ACKED = 5

interface Summary {
  readonly referralId: string
  readonly senderPracticeId: string
  readonly recipientPracticeId: string | null
  readonly status: string
  readonly route: string
  readonly version: number
}

interface Service {
  readonly child: ChildProcess
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly output: () => string
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

let dataDir = ''
let port = 0
let base = ''
const groups = new Set<number>()
const tokens = new Map<string, string>()

/** The service's environment: only what it needs, nothing inherited that could point elsewhere. */
const serviceEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const name of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'SYSTEMROOT']) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  return {
    ...env,
    REFERRALS_DATA_DIR: dataDir,
    REFERRALS_STORE: 'postgres',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    // The load below is one user sending hundreds of requests a second.
    RATE_LIMIT_MAX: '1000000',
  }
}

/** Starts a CLI command in its own process group (so the embedded PostgreSQL can be found and killed). */
const start = (args: readonly string[]): Service => {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: serviceEnv(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (child.pid !== undefined) groups.add(child.pid)
  const lines: string[] = []
  const collect = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n'))
    if (lines.length > 200) lines.splice(0, lines.length - 200)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, exited, output: () => lines.join('\n') }
}

/** Runs a CLI command to completion; stdout separately from stderr. */
const run = async (
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> => {
  const service = start(args)
  let stdout = ''
  let stderr = ''
  service.child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8')
  })
  service.child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
  })
  const { code } = await service.exited
  if (service.child.pid !== undefined) groups.delete(service.child.pid)
  return { code, stdout, stderr }
}

const curlMissing = spawnSync('curl', ['--version']).status !== 0
if (curlMissing) console.warn('skipping the README steps test: no `curl` on this machine')

/** Runs a shell script from the repository root with the service's environment. */
const sh = (script: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], {
      cwd: fileURLToPath(new URL('../../../../', import.meta.url)),
      env: serviceEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    })
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })

const waitReady = async (service: Service, timeoutMs = 60_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  let exited = false
  void service.exited.then(() => {
    exited = true
  })
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the service exited before it was ready:\n${service.output()}`)
    try {
      const res = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(2_000) })
      if (res.status === 200) return
    } catch {
      // not listening yet
    }
    await sleep(200)
  }
  throw new Error(`the service was not ready within ${timeoutMs} ms:\n${service.output()}`)
}

/** True while any process of the group is alive. */
const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

const killGroup = async (pgid: number): Promise<void> => {
  try {
    process.kill(-pgid, 'SIGKILL')
  } catch {
    // already gone
  }
  for (let i = 0; i < 100 && groupAlive(pgid); i++) await sleep(100)
  groups.delete(pgid)
}

const tokenFor = async (userId: string): Promise<string> => {
  const known = tokens.get(userId)
  if (known !== undefined) return known
  const r = await run(['token', '--user', userId, '--ttl', '3600'])
  if (r.code !== 0) throw new Error(`referrals token failed (${r.code}): ${r.stderr}`)
  const token = r.stdout.trim()
  tokens.set(userId, token)
  return token
}

const api = async (
  userId: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> => {
  const headers: Record<string, string> = { authorization: `Bearer ${await tokenFor(userId)}` }
  if (method === 'POST') {
    headers['content-type'] = 'application/json'
    headers['idempotency-key'] = randomUUID()
  }
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  })
  const text = await res.text()
  return { status: res.status, json: text === '' ? null : (JSON.parse(text) as unknown) }
}

/** A choose-for-me referral in the north region (made-up patient data). */
const referralBody = (referralId: string) => ({
  referralId,
  senderPracticeId: 'demo-clinic',
  patientId: `e2e-patient-${referralId.slice(0, 8)}`,
  phi: {
    patient: {
      givenName: 'Test',
      familyName: 'Patient',
      dateOfBirth: '1980-02-03',
      healthNumber: '1234-567-890',
    },
    reason: 'Knee pain on stairs.',
  },
  specialtyId: 'orthopedics',
  category: { categoryId: 'knee' },
  regionId: 'north',
  urgency: 'routine',
  target: { kind: 'pooled' },
})

let service: Service | undefined

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`)
  dataDir = await mkdtemp(join(tmpdir(), 'referrals-e2e-'))
  port = await freePort()
  base = `http://127.0.0.1:${port}`
  service = start(['serve', '--demo'])
  await waitReady(service)
})

afterAll(async () => {
  for (const pgid of [...groups]) await killGroup(pgid)
  if (dataDir !== '') await rm(dataDir, { recursive: true, force: true })
})

describe('the real service on the embedded PostgreSQL', () => {
  it('serves an OpenAPI document that passes Redocly’s recommended rules with no problem', async () => {
    const res = await fetch(`${base}/openapi.json`, { signal: AbortSignal.timeout(10_000) })
    expect(res.status).toBe(200)
    const config = await createConfig({ extends: ['recommended'] })
    const problems = await lintFromString({ source: await res.text(), absoluteRef: 'openapi.json', config })
    expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message}`)).toEqual([])
  })

  it('prints the dashboard link, serves the page, and the demo history gives it figures', async () => {
    expect(service?.output() ?? '').toContain(`Reports dashboard: ${base}/dashboard\n`)
    const page = await fetch(`${base}/dashboard`, { signal: AbortSignal.timeout(10_000) })
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('<canvas id="chart-funnel"')
    const day = 86_400_000
    const from = new Date(Date.now() - 90 * day).toISOString()
    const to = new Date(Date.now() + day).toISOString()
    const funnel = await api(SENDER, 'GET', `/reports/funnel?practiceId=demo-clinic&from=${from}&to=${to}`)
    expect(funnel.status).toBe(200)
    const figures = (funnel.json as { cells: { figures: { sent: number; completed: number } }[] }).cells[0]
      ?.figures
    // Six weeks of four to seven referrals a working day, most of them completed by now.
    expect(figures?.sent).toBeGreaterThanOrEqual(100)
    expect(figures?.completed).toBeGreaterThan(0)
  })

  // The README's first steps, as a newcomer runs them: the `curl` that `serve --demo` printed, then
  // the README's `sh` block (its port replaced by this service's, `<id>` by the referral's id,
  // `<owner>` by the owner of the practice the router chose).
  it.skipIf(curlMissing)(
    'answers the printed curl and the README’s steps as the README says',
    async () => {
      const printed = (service?.output() ?? '').split('\n').find((l) => l.startsWith('curl -s -X POST'))
      expect(printed, 'serve --demo prints a curl').toBeDefined()
      const sent = await sh(printed ?? 'false')
      expect(sent.code, sent.stderr).toBe(0)
      const summary = JSON.parse(sent.stdout) as Summary
      expect(summary.route).toBe('pooled')
      expect(Object.keys(NORTH_SPECIALISTS)).toContain(summary.recipientPracticeId)

      const readme = await readFile(fileURLToPath(new URL('../../../../README.md', import.meta.url)), 'utf8')
      const block = /Then, with tokens from[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1]
      expect(block, 'the README has the steps block').toBeDefined()
      const script = (block ?? '')
        .replaceAll('http://127.0.0.1:3000', base)
        .replaceAll('<id>', summary.referralId)
        .replaceAll('<owner>', NORTH_SPECIALISTS[summary.recipientPracticeId ?? ''] ?? 'nobody')
        .replaceAll('curl -s ', 'curl -sS --fail-with-body ')
      const steps = await sh(`set -euo pipefail\n${script}`)
      expect(steps.code, `${steps.stdout}\n${steps.stderr}`).toBe(0)
      expect(steps.stdout).toContain(summary.referralId)
      expect(steps.stdout).toContain('"status":"accepted"')
    },
    60_000,
  )

  it('routes a choose-for-me referral to a north specialist and takes it from send to complete', async () => {
    const referralId = randomUUID()
    const sent = await api(SENDER, 'POST', '/referrals', referralBody(referralId))
    expect(sent.status).toBe(201)
    const summary = sent.json as Summary
    expect(summary.referralId).toBe(referralId)
    expect(summary.route).toBe('pooled')
    expect(summary.status).toBe('pending')
    const recipient = summary.recipientPracticeId ?? ''
    expect(Object.keys(NORTH_SPECIALISTS)).toContain(recipient)
    const owner = NORTH_SPECIALISTS[recipient] as string

    const routing = await api(SENDER, 'GET', `/referrals/${referralId}/routing`)
    expect(routing.status).toBe(200)
    expect((routing.json as { decisions: number }).decisions).toBeGreaterThanOrEqual(1)

    const accepted = await api(owner, 'POST', `/referrals/${referralId}/accept`, {})
    expect(accepted.status).toBe(200)
    expect((accepted.json as Summary).status).toBe('accepted')

    const at = new Date(Date.now() + 7 * 24 * 3600 * 1000).toISOString()
    const scheduled = await api(owner, 'POST', `/referrals/${referralId}/appointment`, { at })
    expect(scheduled.status).toBe(200)
    expect((scheduled.json as Summary).status).toBe('scheduled')

    const completed = await api(owner, 'POST', `/referrals/${referralId}/complete`, {
      phi: { outcomeNote: 'Seen; conservative treatment.' },
    })
    expect(completed.status).toBe(200)
    expect((completed.json as Summary).status).toBe('completed')

    const read = await api(SENDER, 'GET', `/referrals/${referralId}`)
    expect(read.status).toBe(200)
    const detail = read.json as { referral: Summary; phiVisible: boolean; appointment: { at: string } | null }
    expect(detail.referral.status).toBe('completed')
    expect(detail.referral.recipientPracticeId).toBe(recipient)
    expect(detail.phiVisible).toBe(true)
    expect(detail.appointment?.at).toBe(at)

    // A specialist the referral was not routed to cannot see it.
    const other = Object.entries(NORTH_SPECIALISTS).find(([practice]) => practice !== recipient)
    const outsider = await api(other?.[1] ?? 'dr-south-d', 'GET', `/referrals/${referralId}`)
    expect(outsider.status).toBe(404)
  }, 30_000)

  const acked: string[] = []

  it('keeps every acknowledged referral when the server is SIGKILLed mid-load', async () => {
    const running = service
    if (running === undefined || running.child.pid === undefined) throw new Error('no running service')
    const pid = running.child.pid
    const token = await tokenFor(SENDER)
    const unexpected: string[] = []
    let killed = false
    let stop = false

    const client = async () => {
      while (!stop) {
        const referralId = randomUUID()
        try {
          const res = await fetch(`${base}/referrals`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/json',
              'idempotency-key': randomUUID(),
            },
            body: JSON.stringify(referralBody(referralId)),
            signal: AbortSignal.timeout(10_000),
          })
          const json = (await res.json()) as Partial<Summary>
          if (res.status === 201 && json.referralId === referralId) acked.push(referralId)
          else if (!killed) unexpected.push(`status ${res.status}`)
        } catch (error) {
          if (killed) return
          unexpected.push(error instanceof Error ? error.message : 'request failed')
        }
      }
    }

    const startedAt = Date.now()
    const clients = Array.from({ length: LOAD_CLIENTS }, client)
    await sleep(KILL_AFTER_MS)
    // Kill mid-load, once some referrals are acknowledged (a slow machine gets a little longer).
    while (acked.length < WANT_ACKED && Date.now() - startedAt < LOAD_MAX_MS) await sleep(50)
    killed = true
    process.kill(pid, 'SIGKILL')
    const exit = await running.exited
    expect(exit.signal).toBe('SIGKILL')
    stop = true
    await Promise.all(clients)
    expect(unexpected).toEqual([])
    expect(acked.length).toBeGreaterThanOrEqual(MIN_ACKED)

    // SIGKILL does not reach the embedded PostgreSQL (a child in the same process group): kill the
    // orphan as well, as a crash of the whole service would. Its lock file stays behind.
    await killGroup(pid)
    expect(groupAlive(pid)).toBe(false)
    const lockFile = join(dataDir, 'postgres', 'postmaster.pid')
    expect(existsSync(lockFile)).toBe(true)
    const stalePid = Number((await readFile(lockFile, 'utf8')).split('\n')[0])
    expect(Number.isInteger(stalePid) && stalePid > 0).toBe(true)

    service = start(['serve', '--demo'])
    await waitReady(service)

    const missing: string[] = []
    for (let i = 0; i < acked.length; i += 8) {
      const batch = acked.slice(i, i + 8)
      const reads = await Promise.all(batch.map((id) => api(SENDER, 'GET', `/referrals/${id}`)))
      reads.forEach((read, j) => {
        const id = batch[j] as string
        const referral = (read.json as { referral?: Summary } | null)?.referral
        if (read.status !== 200 || referral?.referralId !== id) missing.push(`${id}: ${read.status}`)
      })
    }
    expect(missing).toEqual([])

    // The restarted service accepts new work.
    const again = await api(SENDER, 'POST', '/referrals', referralBody(randomUUID()))
    expect(again.status).toBe(201)
    expect(Object.keys(NORTH_SPECIALISTS)).toContain((again.json as Summary).recipientPracticeId)
  }, 90_000)

  it('stops gracefully on SIGTERM and `referrals verify` finds every hash chain intact', async () => {
    const running = service
    if (running === undefined || running.child.pid === undefined) throw new Error('no running service')
    const pid = running.child.pid
    running.child.kill('SIGTERM')
    const exit = await Promise.race([
      running.exited,
      sleep(30_000).then(() => ({ code: null, signal: 'timeout' as const })),
    ])
    expect(exit).toEqual({ code: 0, signal: null })
    // The embedded database was stopped with it.
    for (let i = 0; i < 50 && groupAlive(pid); i++) await sleep(100)
    expect(groupAlive(pid)).toBe(false)
    groups.delete(pid)
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false)

    const verified = await run(['verify'])
    expect(verified.stderr.includes('TAMPERED') || verified.stdout.includes('TAMPERED')).toBe(false)
    expect(verified.code).toBe(0)
    const match = /^OK: (\d+) events in (\d+) streams verified$/m.exec(verified.stdout)
    expect(match).not.toBeNull()
    // At least one stream per acknowledged referral, plus the send-to-complete one and the demo data.
    expect(Number(match?.[2])).toBeGreaterThan(acked.length + 1)
  }, 60_000)
})
