/**
 * End-to-end, real processes: CLI commands beside a live `referrals serve` on the embedded
 * PostgreSQL (built CLI, fresh data directory, `EMBEDDED_POSTGRES_PORT` chosen by the test).
 *
 * 1. `verify`, `replay`, `export-audit` and `forget-patient` run while the service runs: each uses
 *    the service's server (never stops it), and the service still answers `/ready` and lists.
 * 2. When its database disappears (the server is shut down under it), the service exits 1 with a
 *    message instead of staying up answering 500.
 *
 * Needs `packages/http/dist` (the test command runs `npm run build` first).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))
/** No spawned command may run longer than this. */
const COMMAND_TIMEOUT_MS = 60_000

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

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

let dataDir = ''
let port = 0
let pgPort = 0
let base = ''
const groups = new Set<number>()

const env = (): NodeJS.ProcessEnv => {
  const out: NodeJS.ProcessEnv = {}
  for (const name of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'SYSTEMROOT']) {
    const value = process.env[name]
    if (value !== undefined) out[name] = value
  }
  return {
    ...out,
    REFERRALS_DATA_DIR: dataDir,
    REFERRALS_STORE: 'postgres',
    HOST: '127.0.0.1',
    PORT: String(port),
    EMBEDDED_POSTGRES_PORT: String(pgPort),
    LOG_LEVEL: 'warn',
  }
}

interface Proc {
  readonly child: ChildProcess
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly stdout: () => string
  readonly stderr: () => string
}

const start = (args: readonly string[]): Proc => {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: env(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (child.pid !== undefined) groups.add(child.pid)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString('utf8')
  })
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8')
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, exited, stdout: () => stdout, stderr: () => stderr }
}

/** Runs a command to completion, killed after COMMAND_TIMEOUT_MS. */
const run = async (args: readonly string[]) => {
  const p = start(args)
  const timer = setTimeout(() => p.child.kill('SIGKILL'), COMMAND_TIMEOUT_MS)
  const { code, signal } = await p.exited
  clearTimeout(timer)
  if (p.child.pid !== undefined) groups.delete(p.child.pid)
  return { code, signal, stdout: p.stdout(), stderr: p.stderr() }
}

const killGroup = async (pgid: number): Promise<void> => {
  try {
    process.kill(-pgid, 'SIGKILL')
  } catch {
    // already gone
  }
  groups.delete(pgid)
}

const postmaster = async (): Promise<{ pid: number; port: number }> => {
  const lines = (await readFile(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')
  return { pid: Number(lines[0]), port: Number(lines[3]) }
}

let service: Proc | undefined
let token = ''

const waitReady = async (p: Proc, timeoutMs = 60_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  let exited = false
  void p.exited.then(() => {
    exited = true
  })
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the service exited before it was ready:\n${p.stderr()}`)
    try {
      const res = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(2_000) })
      if (res.status === 200) return
    } catch {
      // not listening yet
    }
    await sleep(200)
  }
  throw new Error(`the service was not ready within ${timeoutMs} ms:\n${p.stderr()}`)
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`)
  dataDir = await mkdtemp(join(tmpdir(), 'referrals-sharing-'))
  port = await freePort()
  pgPort = await freePort()
  base = `http://127.0.0.1:${port}`
  service = start(['serve', '--demo'])
  await waitReady(service)
  const t = await run(['token', '--user', 'dr-gp'])
  expect(t.code).toBe(0)
  token = t.stdout.trim()
}, 90_000)

afterAll(async () => {
  for (const pgid of [...groups]) await killGroup(pgid)
  // The embedded server runs in the service's process group; give it a moment to go.
  await sleep(500)
  if (dataDir !== '') await rm(dataDir, { recursive: true, force: true })
})

const list = () =>
  fetch(`${base}/practices/demo-clinic/referrals?box=sent`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  })

describe('CLI commands beside a live service on the embedded PostgreSQL', () => {
  it('use the service’s server on EMBEDDED_POSTGRES_PORT and never stop it', async () => {
    const server = await postmaster()
    expect(server.port).toBe(pgPort)
    expect(alive(server.pid)).toBe(true)

    const commands: readonly (readonly string[])[] = [
      ['verify'],
      ['replay'],
      ['export-audit', '--user', 'nobody'],
      ['forget-patient', '--patient', 'demo-clinic:no-such-patient'],
    ]
    for (const command of commands) {
      const r = await run(command)
      expect({ command: command[0], code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 })
      expect(alive(server.pid)).toBe(true)
      expect((await postmaster()).pid).toBe(server.pid)
      expect((await fetch(`${base}/ready`)).status).toBe(200)
      expect((await list()).status).toBe(200)
    }
    const verified = await run(['verify'])
    expect(verified.stdout).toMatch(/^OK: \d+ events in \d+ streams verified$/m)
  }, 120_000)

  it('the service exits 1 with a message when its database disappears', async () => {
    const running = service
    if (running === undefined) throw new Error('no service')
    const { pid } = await postmaster()
    // What `verify` used to do: a fast shutdown of the server under the live service.
    process.kill(pid, 'SIGINT')
    const exit = await Promise.race([
      running.exited,
      sleep(30_000).then(() => ({ code: null, signal: 'timeout' as const })),
    ])
    expect(exit).toEqual({ code: 1, signal: null })
    expect(running.stderr()).toMatch(/embedded PostgreSQL server \(pid \d+\) exited unexpectedly/)
    expect(running.stderr()).toContain('cannot run without its database')
  }, 60_000)
})
