/**
 * Fairness benchmark: every scenario × every algorithm (see `harness.ts`). Prints the table and
 * writes `bench/results/fairness.{md,json,svg}`.
 *
 *   npx tsx bench/fairness/run.ts [--seed N] [--scale X]
 *
 * Deterministic: the same seed and scale give the same files (apart from the date line).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { runWithSources } from './launch.js'

const option = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  const v = i < 0 ? undefined : Number(process.argv[i + 1])
  return v === undefined || !Number.isFinite(v) || v <= 0 ? fallback : v
}

const main = async (): Promise<void> => {
  const { ALGORITHMS, runAll, scenarios, staticSweep } = await import('./harness.js')
  const { markdownTable, mdCell, svgChart, textTable } = await import('./report.js')
  const seed = Math.floor(option('--seed', 1))
  const scale = option('--scale', 1)
  const started = process.hrtime.bigint()
  const rows = runAll(scale, seed)
  const vectors = 200
  const perVector = Math.max(10, Math.round(600 * scale))
  const sweep = staticSweep(vectors, perVector, seed)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const list = scenarios(scale, seed)
  const command = `npx tsx bench/fairness/run.ts${seed === 1 ? '' : ` --seed ${seed}`}${scale === 1 ? '' : ` --scale ${scale}`}`
  const date = new Date().toISOString().slice(0, 10)

  console.log(
    `Routing fairness: ${list.length} scenarios × ${ALGORITHMS.length} algorithms (seed ${seed}, scale ${scale})\n`,
  )
  console.log(textTable(rows))
  const sweepHead = ['algorithm', 'worst max |lag|', 'vectors with |lag| ≥ 1', 'longest run']
  const sweepCells = sweep.map((r) => [
    r.algorithm,
    r.worstMaxAbsLag.toFixed(2),
    `${r.vectorsWithLagAtLeastOne} / ${vectors}`,
    String(r.longestRun),
  ])
  const sweepTitle = `Static pools: ${vectors} seeded weight vectors (n 2–30, FTE 0.1–1.0), ${perVector} referrals each`
  console.log(`\n${sweepTitle}\n`)
  const w = sweepHead.map((h, i) => Math.max(h.length, ...sweepCells.map((c) => (c[i] as string).length)))
  for (const c of [sweepHead, ...sweepCells]) {
    console.log(c.map((x, i) => (i === 0 ? x.padEnd(w[i] as number) : x.padStart(w[i] as number))).join('  '))
  }
  console.log(
    `\n${rows.length} scenario runs + ${vectors * ALGORITHMS.length} sweep runs in ${seconds.toFixed(1)} s`,
  )

  const dir = fileURLToPath(new URL('../results/', import.meta.url))
  await mkdir(dir, { recursive: true })
  const scenarioLines = list.map((s) => `- \`${s.name}\` (${s.referrals} referrals): ${s.description}`)
  const md = [
    '# Routing fairness',
    '',
    `\`${command}\` — ${date}, Node ${process.version}, seed ${seed}, scale ${scale}`,
    '',
    ...scenarioLines,
    '',
    markdownTable(rows),
    '',
    `## ${sweepTitle}`,
    '',
    `| ${sweepHead.map(mdCell).join(' | ')} |`,
    `|---|${sweepHead
      .slice(1)
      .map(() => '---:')
      .join('|')}|`,
    ...sweepCells.map((c) => `| ${c.join(' | ')} |`),
    '',
    'Definitions: `bench/README.md`. Chart: `fairness.svg`.',
    '',
  ].join('\n')
  await writeFile(`${dir}fairness.md`, md)
  await writeFile(`${dir}fairness.svg`, svgChart(rows, `Routing fairness (seed ${seed}, scale ${scale})`))
  await writeFile(
    `${dir}fairness.json`,
    `${JSON.stringify(
      {
        benchmark: 'routing-fairness',
        command,
        date,
        node: process.version,
        seed,
        scale,
        scenarios: list.map((s) => ({
          name: s.name,
          description: s.description,
          referrals: s.referrals,
          seed: s.seed,
          initial: s.initial,
          changes: s.changes,
          declineRate: s.declineRate ?? 0,
          expiryRate: s.expiryRate ?? 0,
          gamer: s.gamer ?? null,
          deterministicDeclines: s.declines !== undefined,
        })),
        rows,
        staticSweep: { vectors, referralsPerVector: perVector, rows: sweep },
      },
      null,
      2,
    )}\n`,
  )
  console.log(`wrote ${dir}fairness.md, fairness.json, fairness.svg`)
}

await runWithSources(import.meta.url, main)
