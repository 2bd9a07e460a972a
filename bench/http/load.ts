/**
 * HTTP benchmark launcher: `npx tsx bench/http/load.ts [--quick]`.
 *
 * Re-runs itself with the `@referrals/source` export condition so the workspace packages are
 * loaded from their TypeScript sources (no build needed). The driver (`driver.ts`) then starts the
 * service in a child process (`server.ts`: the real application on an embedded PostgreSQL with
 * the demo data, plus a trivial `/bench/noop` route) and loads it with autocannon, so the load
 * generator and the server do not share an event loop.
 */
import { relaunch } from './relaunch.js'

const role = process.env.REFERRALS_BENCH_ROLE
if (role === 'server') {
  const { serveForBench } = await import('./server.js')
  await serveForBench()
} else if (role === 'driver') {
  const { runHttpBench } = await import('./driver.js')
  process.exitCode = await runHttpBench(process.argv.slice(2))
} else {
  relaunch(import.meta.url, { REFERRALS_BENCH_ROLE: 'driver' })
}
