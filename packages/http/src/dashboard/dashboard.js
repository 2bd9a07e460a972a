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

  const draw = (name, config) => {
    if (charts[name] !== undefined) charts[name].destroy()
    charts[name] = new window.Chart($(`chart-${name}`), {
      ...config,
      options: { animation: false, responsive: true, ...config.options },
    })
  }

  const clearCharts = () => {
    for (const name of Object.keys(charts)) {
      charts[name].destroy()
      delete charts[name]
    }
  }

  const FUNNEL_STAGES = ['sent', 'delivered', 'accepted', 'scheduled', 'completed']

  const render = ({ funnel, timings, waits, fairness }) => {
    const f = funnel.cells[0]?.figures
    window.dashboard.figures = { sent: f?.sent ?? 0, referrals: funnel.cells[0]?.referrals ?? 0 }
    $('kpi-sent').textContent = text(f?.sent ?? 0, 0)
    $('kpi-completed').textContent = text(f?.completed ?? 0, 0)
    $('kpi-declineRate').textContent = f === undefined ? '–' : text(f.declineRate, 2)
    $('kpi-expiryRate').textContent = f === undefined ? '–' : text(f.expiryRate, 2)
    $('kpi-backlog').textContent = text(f?.backlog.unassigned ?? 0, 0)
    $('kpi-backlogP50').textContent = text(f?.backlog.age.p50)
    $('kpi-backlogP90').textContent = text(f?.backlog.age.p90)
    $('kpi-backlogOldest').textContent = text(f?.backlog.oldestHours)

    draw('funnel', {
      type: 'bar',
      data: {
        labels: FUNNEL_STAGES,
        datasets: [
          {
            label: 'Referrals',
            data: FUNNEL_STAGES.map((s) => num(f?.[s] ?? 0)),
            backgroundColor: '#0969da',
          },
        ],
      },
      options: { plugins: { legend: { display: false } } },
    })

    const t = timings.cells[0]?.figures
    const milestones = [
      ['timeToAccept', 'to accept'],
      ['timeToSchedule', 'to schedule'],
      ['timeToComplete', 'to complete'],
    ]
    draw('timings', {
      type: 'bar',
      data: {
        labels: milestones.map(([, label]) => label),
        datasets: ['p50', 'p90'].map((p, i) => ({
          label: p,
          data: milestones.map(([key]) => num(t?.[key][p] ?? null)),
          backgroundColor: i === 0 ? '#1a7f37' : '#bf8700',
        })),
      },
    })

    const pools = waits.cells.map((c) => c.group.pool ?? '(all)')
    draw('waits', {
      type: 'bar',
      data: {
        labels: pools,
        datasets: [
          ['min', 'Fastest specialist', '#1a7f37'],
          ['mean', 'Mean', '#0969da'],
          ['max', 'Slowest specialist', '#cf222e'],
        ].map(([key, label, color]) => ({
          label,
          data: waits.cells.map((c) => num(c.figures.medianWait[key])),
          backgroundColor: color,
        })),
      },
      options: { scales: { y: { title: { display: true, text: 'days' } } } },
    })
    const tbody = $('waits-table').querySelector('tbody')
    tbody.replaceChildren(
      ...waits.cells.map((c, i) => {
        const tr = document.createElement('tr')
        const m = c.figures.medianWait
        const figures = [c.figures.referralsWithAppointment, m.min, m.mean, m.max, m.sd, m.cv]
        for (const v of [pools[i], ...figures.map((x) => text(x, 2))]) {
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
    draw('fairness', {
      type: 'line',
      data: {
        labels: weeks,
        datasets: fairnessPools.map((pool, i) => ({
          label: pool,
          data: weeks.map((w) =>
            num(fairness.cells.find((c) => c.group.pool === pool && c.group.week === w)?.maxAbsLag ?? null),
          ),
          borderColor: palette[i % palette.length],
          backgroundColor: palette[i % palette.length],
          spanGaps: true,
        })),
      },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: '|lag|' } } } },
    })

    // The pool choices: every pool the reports mention, keeping the current choice.
    const select = $('pool')
    const known = new Set([...select.options].map((o) => o.value))
    for (const pool of [...pools, ...fairnessPools]) {
      if (pool === '(all)' || known.has(pool)) continue
      known.add(pool)
      select.append(new Option(pool, pool))
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
