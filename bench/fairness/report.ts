/**
 * Renders fairness metrics as a Markdown table, a plain-text table and a hand-written SVG chart.
 * Pure functions of the metrics: no dependency, no I/O.
 */
import type { AlgorithmName, Metrics } from './harness.js'

const COLUMNS: readonly { head: string; cell: (m: Metrics) => string }[] = [
  { head: 'scenario', cell: (m) => m.scenario },
  { head: 'algorithm', cell: (m) => m.algorithm },
  { head: 'max |lag|', cell: (m) => m.maxAbsLag.toFixed(2) },
  { head: 'lag re-based', cell: (m) => m.maxAbsLagRebased.toFixed(2) },
  { head: 'accepted lag', cell: (m) => m.acceptedLag.toFixed(2) },
  { head: 'WF lag', cell: (m) => m.waterFillingLag.toFixed(2) },
  { head: 'norm. spread', cell: (m) => m.normalisedSpread.toFixed(3) },
  { head: 'Jain', cell: (m) => m.jain.toFixed(4) },
  { head: 'Gini', cell: (m) => m.gini.toFixed(4) },
  { head: 'longest run', cell: (m) => String(m.longestRun) },
  { head: 'run after join', cell: (m) => String(m.longestRunAfterJoin) },
  { head: 'wait spread (d)', cell: (m) => m.waitSpreadDays.toFixed(2) },
  { head: 'mean wait (d)', cell: (m) => m.meanWaitDays.toFixed(2) },
]

const NUMERIC_FROM = 2

/** A Markdown table cell: `|` escaped so `|lag|` does not split the cell. */
export const mdCell = (s: string): string => s.replace(/\|/g, '\\|')

export const markdownTable = (rows: readonly Metrics[]): string => {
  const head = `| ${COLUMNS.map((c) => mdCell(c.head)).join(' | ')} |`
  const rule = `|${COLUMNS.map((_, i) => (i < NUMERIC_FROM ? '---' : '---:')).join('|')}|`
  const body = rows.map((m, i) => {
    const cells = COLUMNS.map((c) => c.cell(m))
    // Name the scenario once per group.
    if (i > 0 && rows[i - 1]?.scenario === m.scenario) cells[0] = ''
    return `| ${cells.join(' | ')} |`
  })
  return [head, rule, ...body].join('\n')
}

export const textTable = (rows: readonly Metrics[]): string => {
  const cells = rows.map((m) => COLUMNS.map((c) => c.cell(m)))
  const widths = COLUMNS.map((c, i) => Math.max(c.head.length, ...cells.map((r) => (r[i] as string).length)))
  const line = (r: readonly string[]) =>
    r
      .map((x, i) => (i < NUMERIC_FROM ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number)))
      .join('  ')
  return [line(COLUMNS.map((c) => c.head)), ...cells.map(line)].join('\n')
}

const COLOURS: Readonly<Record<AlgorithmName, string>> = {
  random: '#9e9e9e',
  'round-robin': '#f4a261',
  'least-count': '#e76f51',
  'smooth-wrr': '#2a9d8f',
  'ours-v1': '#8ab6d6',
  ours: '#264653',
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

const PANELS: readonly { title: string; log: boolean; value: (m: Metrics) => number }[] = [
  { title: 'max |lag| (per-candidate share, referrals, log scale)', log: true, value: (m) => m.maxAbsLag },
  {
    title: 'lag against the water-filling entitlement, re-based on resume (referrals, log scale)',
    log: true,
    value: (m) => m.waterFillingLag,
  },
  { title: 'spread of FTE-normalised counts (linear)', log: false, value: (m) => m.normalisedSpread },
  { title: 'longest run after a join/resume (log scale)', log: true, value: (m) => m.longestRunAfterJoin },
  {
    title: 'spread of mean waits across specialists, days (log scale)',
    log: true,
    value: (m) => m.waitSpreadDays,
  },
]

/**
 * Grouped bar chart, one panel per metric, one group per scenario, one bar per algorithm. Most
 * panels use a log scale (log10(1 + x)) because the algorithms differ by orders of magnitude.
 */
export const svgChart = (rows: readonly Metrics[], title: string): string => {
  const scenarios = [...new Set(rows.map((r) => r.scenario))]
  const algorithms = [...new Set(rows.map((r) => r.algorithm))]
  const barW = 11
  const groupW = algorithms.length * barW + 22
  const left = 60
  const panelW = left + scenarios.length * groupW + 10
  const panelH = 210
  const plotH = 140
  const top = 50
  const width = panelW
  const height = top + PANELS.length * panelH + 40
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="10">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>`,
  ]
  algorithms.forEach((a, i) => {
    const x = left + i * 105
    out.push(`<rect x="${x}" y="28" width="10" height="10" fill="${COLOURS[a]}"/>`)
    out.push(`<text x="${x + 14}" y="37">${esc(a)}</text>`)
  })
  PANELS.forEach((panel, p) => {
    const y0 = top + p * panelH
    const baseY = y0 + 20 + plotH
    const t = (v: number) => (panel.log ? Math.log10(1 + Math.max(0, v)) : Math.max(0, v))
    const maxV = Math.max(0.0001, ...rows.map((r) => t(panel.value(r))))
    const scale = plotH / Math.ceil(maxV)
    out.push(`<text x="${left}" y="${y0 + 12}" font-size="11" font-weight="bold">${esc(panel.title)}</text>`)
    for (let tick = 0; tick <= Math.ceil(maxV); tick++) {
      const y = baseY - tick * scale
      const label = panel.log && tick > 0 ? 10 ** tick - 1 : tick
      out.push(`<line x1="${left - 4}" y1="${y}" x2="${panelW - 10}" y2="${y}" stroke="#e0e0e0"/>`)
      out.push(`<text x="${left - 6}" y="${y + 3}" text-anchor="end">${label}</text>`)
    }
    scenarios.forEach((s, g) => {
      const gx = left + g * groupW + 7
      algorithms.forEach((a, i) => {
        const m = rows.find((r) => r.scenario === s && r.algorithm === a)
        if (m === undefined) return
        const v = panel.value(m)
        const h = t(v) * scale
        out.push(
          `<rect x="${gx + i * barW}" y="${(baseY - h).toFixed(1)}" width="${barW - 1}" height="${h.toFixed(1)}" fill="${COLOURS[a]}"><title>${esc(`${s} / ${a}: ${v}`)}</title></rect>`,
        )
      })
      out.push(
        `<text x="${gx + (algorithms.length * barW) / 2}" y="${baseY + 13}" text-anchor="middle" font-size="9">${esc(s)}</text>`,
      )
    })
    out.push(`<line x1="${left}" y1="${baseY}" x2="${panelW - 10}" y2="${baseY}" stroke="#333"/>`)
  })
  out.push(
    `<text x="${left}" y="${height - 12}" fill="#555">log-scale panels: bar height ∝ log10(1 + value). Hover a bar for its value; the full table is fairness.md</text>`,
  )
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
