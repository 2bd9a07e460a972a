/**
 * HTTP benchmark launcher: `npx tsx bench/http/load.ts [--quick]`.
 *
 * Re-runs itself with the `@referrals/source` export condition so the workspace packages are
 * loaded from their TypeScript sources (no build needed). The driver (`driver.ts`) then starts the
 * service in a child process (`server.ts`: the real application on an embedded PostgreSQL with
 * the demo data, plus a trivial `/bench/noop` route) and loads it with autocannon, so the load
 * generator and the server do not share an event loop.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const role = process.env.REFERRALS_BENCH_ROLE
if (role === 'server') {
  const { serveForBench } = await import('./server.js')
  await serveForBench()
} else if (role === 'driver') {
  const { runHttpBench } = await import('./driver.js')
  process.exitCode = await runHttpBench(process.argv.slice(2))
} else {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@referrals/source',
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit', env: { ...process.env, REFERRALS_BENCH_ROLE: 'driver' } },
  )
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
}
