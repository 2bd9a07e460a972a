import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * Runs `moduleUrl` again in a child Node process through tsx (with the workspace packages'
 * TypeScript sources when `source`, else their compiled `dist`), with `env` added and the same
 * arguments, and exits with the child's code. The benchmarks' entry points use it so the measured
 * code loads the way they say (and so `--expose-gc`-like flags or conditions apply from the start).
 */
export const relaunch = (
  moduleUrl: string,
  env: Readonly<Record<string, string>>,
  options: { readonly source?: boolean } = {},
): void => {
  const child = spawn(
    process.execPath,
    [
      ...(options.source === false ? [] : ['--conditions=@referrals/source']),
      '--import',
      'tsx',
      fileURLToPath(moduleUrl),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit', env: { ...process.env, ...env } },
  )
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
}
