import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Instant, manualClock } from '@referrals/core'
import { issueDevToken } from '../auth.js'
import { loadConfig } from '../config.js'
import { seedDemo } from '../demo.js'
import { demoHistoryStart, seedDemoHistory } from '../demo-history.js'
import { buildServer, openRuntime } from '../server.js'

/**
 * The service as `serve --demo` runs it (the same `buildServer`), on the in-memory store, with the
 * demo dataset and its referral history up to `end`, listening on 127.0.0.1 on a free port. The
 * engine's clock stays at `end`, so the figures (backlog ages included) do not move. For the
 * dashboard's Chromium test and `scripts/dashboard-screenshot.ts`.
 */
export const startDemoDashboard = async (options: { readonly end: Instant; readonly weeks?: number }) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'referrals-dashboard-'))
  const config = await loadConfig(
    { REFERRALS_STORE: 'memory', REFERRALS_DATA_DIR: dataDir, LOG_LEVEL: 'silent' },
    () => undefined,
  )
  // As `serve --demo`: the demo world is created before its history begins.
  const clock = manualClock(demoHistoryStart(options.end, options.weeks))
  const runtime = await openRuntime(config, { clock })
  try {
    await seedDemo(runtime.engine)
    const history = await seedDemoHistory(runtime.engine, clock, {
      end: options.end,
      ...(options.weeks === undefined ? {} : { weeks: options.weeks }),
    })
    const app = await buildServer(runtime)
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    return {
      base,
      referrals: history.referrals,
      token: (userId: string, roles: readonly ('admin' | 'auditor')[] = []) =>
        issueDevToken(config, { userId, roles: [...roles] }),
      close: async () => {
        await app.close()
        await runtime.close()
        await rm(dataDir, { recursive: true, force: true })
      },
    }
  } catch (error) {
    await runtime.close()
    await rm(dataDir, { recursive: true, force: true })
    throw error
  }
}
