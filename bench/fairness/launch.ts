import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * Runs `main` in a child Node process with the `@referrals/source` export condition, so
 * `@referrals/core` is loaded from its TypeScript sources (no build needed), the same way the
 * store benchmark does. Returns true in the child (where `main` has run).
 */
export const runWithSources = async (scriptUrl: string, main: () => Promise<void>): Promise<void> => {
  if (process.env.REFERRALS_BENCH_CHILD === '1') {
    await main()
    return
  }
  const child = spawn(
    process.execPath,
    ['--conditions=@referrals/source', '--import', 'tsx', fileURLToPath(scriptUrl), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, REFERRALS_BENCH_CHILD: '1' } },
  )
  await new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      process.exitCode = code ?? (signal === null ? 1 : 128)
      resolve()
    }),
  )
}
