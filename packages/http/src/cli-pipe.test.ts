import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

describe('the built CLI writing into a pipe that closes early (`referrals … | head`)', () => {
  it('exits 0 without a stack trace instead of crashing on EPIPE', async () => {
    const child = spawn(process.execPath, [cli, 'help'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.destroy() // the reader is gone before the first byte
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
  })
})
