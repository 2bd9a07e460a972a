import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { route } from '../openapi/route.js'

/**
 * The static files of the dashboard live in `src/dashboard/` (published with the package). This
 * module sits in `src/routes/` when run from source and in `dist/routes/` when built, so the same
 * relative path reaches them from both.
 */
const ASSETS_DIR = fileURLToPath(new URL('../../src/dashboard/', import.meta.url))

/** Chart.js's UMD build, from node_modules (its `exports` map names only the entry points). */
const chartJsFile = (): string =>
  join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js')

const ASSETS = [
  { url: '/dashboard', file: () => join(ASSETS_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  {
    url: '/dashboard/dashboard.js',
    file: () => join(ASSETS_DIR, 'dashboard.js'),
    type: 'text/javascript; charset=utf-8',
  },
  {
    url: '/dashboard/dashboard.css',
    file: () => join(ASSETS_DIR, 'dashboard.css'),
    type: 'text/css; charset=utf-8',
  },
  { url: '/dashboard/chart.umd.min.js', file: chartJsFile, type: 'text/javascript; charset=utf-8' },
] as const

/**
 * `/dashboard`: a static page for practice managers that draws the `/reports/*` figures (funnel,
 * timings, wait-time dispersion per pool, fairness per week, backlog) with Chart.js. The page and
 * its scripts are public (they hold no data; the page asks for a token and sends it to the report
 * routes as a bearer header) and served from this origin, so helmet's default CSP
 * (`script-src 'self'`) allows them. Not part of the API: left out of the OpenAPI document.
 */
export const dashboardRoutes = async (app: FastifyInstance): Promise<void> => {
  const files = new Map<string, Buffer>()
  for (const asset of ASSETS) files.set(asset.url, await readFile(asset.file()))
  for (const asset of ASSETS) {
    route(app, {
      method: 'GET',
      url: asset.url,
      operationId: `getDashboard${asset.url.replace(/\W/g, '_')}`,
      summary: `Dashboard file ${asset.url}`,
      tags: ['reports'],
      public: true,
      hide: true,
      produces: asset.type,
      handler: async (_input, _request, reply) => {
        reply.type(asset.type)
        return reply.send(files.get(asset.url))
      },
    })
  }
}
