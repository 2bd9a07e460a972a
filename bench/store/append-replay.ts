/**
 * Store benchmark launcher: `npx tsx bench/store/append-replay.ts`.
 *
 * Re-runs itself with the `@referrals/source` export condition so the workspace packages are
 * loaded from their TypeScript sources (no build needed), and with stand-ins for two peer
 * dependencies of the peer library that are not installed (see `peer-shims/hooks.mjs`), then runs
 * `store-bench.ts`. `--quick` runs a small scale for a smoke test.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

if (process.env.REFERRALS_BENCH_CHILD === '1') {
  const { runStoreBench } = await import('./store-bench.js')
  await runStoreBench()
} else {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@referrals/source',
      '--import',
      'tsx',
      '--import',
      fileURLToPath(new URL('./peer-shims/register.mjs', import.meta.url)),
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit', env: { ...process.env, REFERRALS_BENCH_CHILD: '1' } },
  )
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
}
