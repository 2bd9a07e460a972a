import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

// The core is pure (SPEC §1): time, ids, randomness, crypto and storage come in through ports.
// This scans every production source file of the core (tests and the `testing` helpers excluded)
// for the ways impurity usually sneaks in.
const root = new URL('.', import.meta.url).pathname
const sources = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === 'testing' ? [] : sources(path)
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : []
  })

const forbidden: readonly [string, RegExp][] = [
  ['Date.now()', /\bDate\.now\s*\(/],
  ['new Date() without an argument', /\bnew Date\s*\(\s*\)/],
  ['Math.random()', /\bMath\.random\s*\(/],
  ['randomUUID / getRandomValues', /\b(randomUUID|getRandomValues)\b/],
  ['timers', /\b(setTimeout|setInterval|setImmediate)\s*\(/],
  ['performance.now()', /\bperformance\.now\s*\(/],
  ['process access', /\bprocess\.(env|hrtime|argv|exit)\b/],
  ['Node built-in imports', /from\s+['"](node:|fs['"]|path['"]|crypto['"]|http['"]|net['"]|os['"])/],
  ['console output', /\bconsole\.(log|info|warn|error|debug)\s*\(/],
]

describe('core purity', () => {
  const files = sources(root)

  it('scans the whole core', () => {
    expect(files.length).toBeGreaterThan(10)
  })

  it.each(forbidden)('no %s in production code', (_name, pattern) => {
    const offenders = files.filter((f) => pattern.test(readFileSync(f, 'utf8'))).map((f) => relative(root, f))
    expect(offenders).toEqual([])
  })

  it('the scanner itself catches an impure line', () => {
    const probe = 'const t = Date.now()'
    expect(forbidden.some(([, p]) => p.test(probe))).toBe(true)
  })
})
