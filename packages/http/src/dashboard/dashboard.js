// The reports dashboard: fetches /reports/* with the token as a bearer header (never in a URL)
// and draws them with Chart.js (served by this service from node_modules). No inline scripts, so
// the service's CSP (script-src 'self') applies unchanged.
;(() => {
  const TOKEN_KEY = 'referrals.dashboard.token'
  const $ = (id) => document.getElementById(id)
  const charts = {}
  /** For tests and the curious: the Chart.js instances by name, and the last figures shown. */
  window.dashboard = { charts, state: 'idle', figures: {} }

  const isoDay = (date) => date.toISOString().slice(0, 10)
  const today = new Date()
  $('from').value = isoDay(new Date(today.getTime() - 90 * 86_400_000))
  $('to').value = isoDay(new Date(today.getTime() + 86_400_000))

  const token = () => sessionStorage.getItem(TOKEN_KEY)
  const showTokenState = () => {
    $('token-state').textContent = token() === null ? 'No token yet.' : 'Token kept for this tab.'
  }

  const status = (text, kind = 'error') => {
    const el = $('status')
    el.hidden = text === ''
    el.className = kind
    el.textContent = text
  }

  /** A figure as the reports give it: a number, the suppression marker ("< 5"), or null. */
  const num = (v) => (typeof v === 'number' ? v : null)
  const text = (v, digits = 1) =>
    v === null || v === undefined ? '–' : typeof v === 'number' ? String(+v.toFixed(digits)) : String(v)

  const problemText = (res, body, practiceId) => {
    const detail = body && typeof body.detail === 'string' ? ` (${body.detail})` : ''
    if (res.status === 401) return `Sign-in failed: the token was refused (expired or invalid)${detail}.`
    if (res.status === 403)
      return `Forbidden: this token may not see these reports${detail}. Network-wide figures are for platform admins and auditors; a practice member enters their practice id.`
    if (res.status === 404 && practiceId !== '')
      return `Practice "${practiceId}" is not known to this token: it is not one of your practices.`
    if (res.status === 400) return `The filters are not valid${detail}.`
    return `The reports could not be loaded: HTTP ${res.status}${detail}.`
  }

  const fetchReport = async (name, params) => {
    const res = await fetch(`/reports/${name}?${params}`, {
      headers: { authorization: `Bearer ${token()}`, accept: 'application/json' },
    })
    const body = await res.json().catch(() => null)
    if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { res, body })
    return body
  }

  /** A pool id (`region:specialty:category:subcategory`, `*` for any) as a person reads it. */
  const poolLabel = (pool) =>
    pool === null || pool === undefined
      ? '(all)'
      : pool
          .split(':')
          .filter((part) => part !== '*')
          .join(' / ')
  const percent = (v) => (typeof v === 'number' ? `${+(v * 100).toFixed(1)} %` : text(v))
  const duration = (hours) =>
    typeof hours !== 'number'
      ? text(hours)
      : hours < 48
        ? `${+hours.toFixed(1)} h`
        : `${+(hours / 24).toFixed(1)} d`
  const axis = (title, extra = {}) => ({
    beginAtZero: true,
    title: { display: true, text: title, font: { size: 13, weight: 'bold' } },
    ...extra,
  })

  const draw = (name, config) => {
    if (charts[name] !== undefined) charts[name].destroy()
    window.Chart.defaults.font.size = 13
    window.Chart.defaults.color = '#1b1f24'
    charts[name] = new window.Chart($(`chart-${name}`), {
      ...config,
      options: { animation: false, responsive: true, maintainAspectRatio: false, ...config.options },
    })
  }

  const clearCharts = () => {
    for (const name of Object.keys(charts)) {
      charts[name].destroy()
      delete charts[name]
    }
  }

  const FUNNEL_STAGES = [
    ['sent', 'Sent'],
    ['delivered', 'Delivered'],
    ['accepted', 'Accepted'],
    ['scheduled', 'Scheduled'],
    ['completed', 'Completed'],
  ]

  /** The strict routing bound (|λ| < 1, periods without declines or exclusions) as a dashed line. */
  const invariantLine = {
    id: 'invariantLine',
    afterDatasetsDraw: (chart) => {
      const { ctx, chartArea, scales } = chart
      const y = scales.y.getPixelForValue(1)
      if (y < chartArea.top || y > chartArea.bottom) return
      ctx.save()
      ctx.strokeStyle = '#cf222e'
      ctx.setLineDash([6, 4])
      ctx.beginPath()
      ctx.moveTo(chartArea.left, y)
      ctx.lineTo(chartArea.right, y)
      ctx.stroke()
      ctx.fillStyle = '#cf222e'
      ctx.font = '12px system-ui, sans-serif'
      ctx.fillText('|λ| = 1', chartArea.right - 52, y - 4)
      ctx.restore()
    },
  }

  const render = ({ funnel, timings, waits, fairness }) => {
    const f = funnel.cells[0]?.figures
    window.dashboard.figures = { sent: f?.sent ?? 0, referrals: funnel.cells[0]?.referrals ?? 0 }
    $('kpi-sent').textContent = text(f?.sent ?? 0, 0)
    $('kpi-completed').textContent = text(f?.completed ?? 0, 0)
    $('kpi-declineRate').textContent = f === undefined ? '–' : percent(f.declineRate)
    $('kpi-expiryRate').textContent = f === undefined ? '–' : percent(f.expiryRate)
    $('kpi-backlog').textContent = text(f?.backlog.unassigned ?? 0, 0)
    $('kpi-backlogP50').textContent = duration(f?.backlog.age.p50)
    $('kpi-backlogP90').textContent = duration(f?.backlog.age.p90)
    $('kpi-backlogOldest').textContent = duration(f?.backlog.oldestHours)
    const sum = (...vs) => (vs.every((v) => typeof v === 'number') ? vs.reduce((a, b) => a + b, 0) : '< 5')
    $('kpi-declines').textContent = text(f?.declines ?? 0, 0)
    $('kpi-expiries').textContent = text(f?.expiries ?? 0, 0)
    $('kpi-noShows').textContent = text(f?.noShows ?? 0, 0)
    $('kpi-cancelled').textContent =
      f === undefined
        ? '0'
        : text(sum(f.cancelledBeforeAccept, f.cancelledAfterAccept, f.cancelledAfterSchedule), 0)
    $('kpi-returned').textContent = text(f?.returned ?? 0, 0)
    const range = `${$('from').value} to ${$('to').value} (exclusive)`
    const pool = $('pool').value
    $('summary-title').textContent =
      `Summary: ${range}${pool === '' ? ', all pools' : `, pool ${poolLabel(pool)}`}`

    draw('funnel', {
      type: 'bar',
      data: {
        labels: FUNNEL_STAGES.map(([, label]) => label),
        datasets: [
          {
            label: 'Referrals',
            data: FUNNEL_STAGES.map(([key]) => num(f?.[key] ?? 0)),
            backgroundColor: '#0969da',
          },
        ],
      },
      options: {
        plugins: { legend: { display: false } },
        scales: { y: axis('referrals', { ticks: { precision: 0 } }), x: axis('stage reached') },
      },
    })

    const t = timings.cells[0]?.figures
    const milestones = [
      ['timeToAccept', 'Accepted'],
      ['timeToSchedule', 'Appointment booked'],
      ['timeToComplete', 'Completed'],
    ]
    const days = (hours) => (typeof hours === 'number' ? +(hours / 24).toFixed(2) : null)
    draw('timings', {
      type: 'bar',
      data: {
        labels: milestones.map(([key, label]) => `${label} (n = ${text(t?.[key].n ?? 0, 0)})`),
        datasets: [
          ['p50', 'median (p50)', '#1a7f37'],
          ['p90', '90th percentile (p90)', '#bf8700'],
        ].map(([p, label, color]) => ({
          label,
          data: milestones.map(([key]) => days(t?.[key][p] ?? null)),
          backgroundColor: color,
        })),
      },
      options: { scales: { y: axis('days since sent'), x: axis('milestone') } },
    })

    const pools = waits.cells.map((c) => c.group.pool ?? '(all)')
    // Suppressed pools ("< 5") have no figures to draw: the table still lists them.
    const drawn = waits.cells.filter((c) => typeof c.figures.medianWait.mean === 'number')
    draw('waits', {
      type: 'bar',
      data: {
        labels: drawn.map((c) => poolLabel(c.group.pool)),
        datasets: [
          ['min', 'Fastest specialist', '#1a7f37'],
          ['mean', 'Mean', '#0969da'],
          ['max', 'Slowest specialist', '#cf222e'],
        ].map(([key, label, color]) => ({
          label,
          data: drawn.map((c) => num(c.figures.medianWait[key])),
          backgroundColor: color,
        })),
      },
      options: {
        scales: { y: axis('median days to appointment'), x: axis('pool (region / specialty / category)') },
      },
    })
    const tbody = $('waits-table').querySelector('tbody')
    tbody.replaceChildren(
      ...waits.cells.map((c, i) => {
        const tr = document.createElement('tr')
        const m = c.figures.medianWait
        const figures = [c.figures.referralsWithAppointment, m.min, m.mean, m.max, m.sd, m.cv]
        const shown = figures.map((x, j) => text(x, j === figures.length - 1 ? 2 : 1))
        for (const v of [poolLabel(pools[i]), ...shown]) {
          const td = document.createElement('td')
          td.textContent = v
          tr.append(td)
        }
        return tr
      }),
    )

    const weeks = [...new Set(fairness.cells.map((c) => c.group.week))].sort()
    const fairnessPools = [...new Set(fairness.cells.map((c) => c.group.pool))].sort()
    const palette = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bf8700', '#57606a']
    const flagged = fairness.cells.filter((c) => c.outsideInvariant === true).length
    $('fairness-flagged').textContent = `Flagged pool-weeks in this period: ${flagged}.`
    draw('fairness', {
      type: 'line',
      data: {
        labels: weeks.map((w) => `week of ${w}`),
        datasets: fairnessPools.map((pool, i) => ({
          label: poolLabel(pool),
          data: weeks.map((w) =>
            num(
              fairness.cells.find((c) => c.group.pool === pool && c.group.week === w)?.routerMaxAbsLag ??
                null,
            ),
          ),
          borderColor: palette[i % palette.length],
          backgroundColor: palette[i % palette.length],
          spanGaps: true,
        })),
      },
      options: {
        scales: { y: axis('max |λ| (referrals)'), x: axis('week (Monday, UTC)') },
      },
      plugins: [invariantLine],
    })

    // The pool choices: every pool the reports mention, keeping the current choice.
    const select = $('pool')
    const known = new Set([...select.options].map((o) => o.value))
    for (const pool of [...pools, ...fairnessPools]) {
      if (pool === '(all)' || known.has(pool)) continue
      known.add(pool)
      select.append(new Option(poolLabel(pool), pool))
    }
  }

  let generation = 0
  const refresh = async () => {
    if (token() === null) {
      status('Enter a bearer token to load the reports.', 'info')
      return
    }
    const mine = ++generation
    window.dashboard.state = 'loading'
    const from = $('from').value
    const to = $('to').value
    const pool = $('pool').value
    const practiceId = $('practiceId').value.trim()
    const params = new URLSearchParams({ from: `${from}T00:00:00Z`, to: `${to}T00:00:00Z` })
    if (pool !== '') params.set('pool', pool)
    if (practiceId !== '') params.set('practiceId', practiceId)
    const waitParams = new URLSearchParams(params)
    waitParams.set('groupBy', 'pool')
    try {
      const [funnel, timings, waits, fairness] = await Promise.all([
        fetchReport('funnel', params),
        fetchReport('timings', params),
        fetchReport('wait-times', waitParams),
        fetchReport('fairness', params),
      ])
      if (mine !== generation) return
      status('')
      render({ funnel, timings, waits, fairness })
      window.dashboard.state = 'ready'
    } catch (error) {
      if (mine !== generation) return
      clearCharts()
      window.dashboard.figures = {}
      status(
        error.res === undefined
          ? `The reports could not be loaded: ${error.message}.`
          : problemText(error.res, error.body, practiceId),
      )
      window.dashboard.state = 'error'
    }
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const value = $('token').value.trim()
    if (value === '') return
    sessionStorage.setItem(TOKEN_KEY, value)
    $('token').value = ''
    showTokenState()
    void refresh()
  })
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY)
    showTokenState()
    clearCharts()
    status('Token forgotten.', 'info')
  })
  $('filters').addEventListener('submit', (event) => {
    event.preventDefault()
    void refresh()
  })
  for (const id of ['from', 'to', 'pool']) $(id).addEventListener('change', () => void refresh())

  showTokenState()
  void refresh()
})()
