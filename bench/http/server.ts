/**
 * The server side of the HTTP benchmark (a child process of the driver): the service as
 * `referrals serve --demo` builds it — `openRuntime` (embedded PostgreSQL in
 * `REFERRALS_DATA_DIR`, or `DATABASE_URL`), the demo dataset, the resource routes — plus
 * `GET /bench/noop`, a trivial route behind the same hooks (security headers, authentication,
 * rate limiting, idempotency, request log), as the framework baseline.
 *
 * Tells the driver its port and a development token per demo user over IPC, then serves until
 * the driver sends `stop` (or SIGTERM), and stops gracefully.
 */
import { countingStore } from '@referrals/core/testing'
import { buildApp } from '../../packages/http/src/app.js'
import { issueDevToken } from '../../packages/http/src/auth.js'
import { loadConfig } from '../../packages/http/src/config.js'
import { DEMO, seedDemo } from '../../packages/http/src/demo.js'
import { registerResourceRoutes } from '../../packages/http/src/routes/resources.js'
import { openRuntime, stopServer } from '../../packages/http/src/server.js'
import { rawCommitsPerSecond } from '../store/raw-insert.js'
import { nextTransactionId } from './commits.js'
import { SPREAD, seedSpreadPools } from './spread.js'

export interface ReadyMessage {
  readonly kind: 'ready'
  readonly port: number
  readonly storeDescription: string
  /** userId → bearer token. */
  readonly tokens: Readonly<Record<string, string>>
}

/** `GET /bench/counts`: the event-store calls the engine made so far (each append is one transaction on PostgreSQL). */
export interface StoreCounts {
  readonly append: number
  readonly appendMany: number
  readonly readStream: number
  readonly readAll: number
  /** PostgreSQL transaction ids assigned so far: write transactions, each a WAL-flushing commit (`commits.ts`). */
  readonly writeTransactions: number
  /** The server process's CPU time so far (user + system, µs, `process.cpuUsage`). */
  readonly cpuMicros: number
  /** Responses sent so far (every route, the bench routes included). */
  readonly responses: number
}

export const serveForBench = async (): Promise<void> => {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('bench/http/server.ts runs as a child of the driver (IPC)')
  const config = await loadConfig(process.env, () => undefined)
  let counting: ReturnType<typeof countingStore> | undefined
  let responses = 0
  const runtime = await openRuntime(config, {
    wrapStore: (inner) => {
      counting = countingStore(inner)
      return counting.store
    },
  })
  await seedDemo(runtime.engine)
  await seedSpreadPools(runtime.engine)
  // The same application as `buildServer(runtime)`, with the baseline route added before it is sealed.
  const app = await buildApp({
    store: runtime.store,
    config,
    resolveActor: (userId, roles) => runtime.engine.directory.resolveActor(userId, roles),
    idempotencyStore: runtime.idempotencyStore,
    registerRoutes: async (instance) => {
      instance.addHook('onResponse', async () => {
        responses++
      })
      await registerResourceRoutes({ engine: runtime.engine, routing: runtime.routing })(instance)
      instance.get('/bench/noop', async () => ({ ok: true }))
      // The raw commit limit of this very database, measured in the same run as the scenarios:
      // one client, one-row INSERTs each committing on its own, for `ms` milliseconds.
      instance.get<{ Querystring: { ms?: string } }>('/bench/raw-commit', async (request, reply) => {
        const pool = runtime.pool
        if (pool === undefined) return reply.code(409).send({ error: 'no PostgreSQL pool (in-memory store)' })
        const ms = Math.min(30_000, Math.max(100, Number(request.query.ms ?? 3000) || 3000))
        return { commitsPerSecond: await rawCommitsPerSecond(pool, ms) }
      })
      instance.get('/bench/counts', async (): Promise<StoreCounts> => {
        const calls = counting?.calls
        let readStream = 0
        for (const n of calls?.reads.values() ?? []) readStream += n
        return {
          append: calls?.append ?? 0,
          appendMany: calls?.appendMany ?? 0,
          readStream,
          readAll: calls?.readAll ?? 0,
          writeTransactions: runtime.pool === undefined ? 0 : await nextTransactionId(runtime.pool),
          cpuMicros: (() => {
            const cpu = process.cpuUsage()
            return cpu.user + cpu.system
          })(),
          responses,
        }
      })
    },
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const users = [
    DEMO.clinic.owner,
    ...DEMO.specialists.map((s) => s.owner),
    ...SPREAD.specialists.map((s) => s.owner),
  ]
  const tokens: Record<string, string> = {}
  for (const userId of users) tokens[userId] = await issueDevToken(config, { userId }, { ttlSeconds: 3600 })

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await stopServer(app, runtime)
    process.exit(0)
  }
  process.on('message', (message) => {
    if ((message as { kind?: unknown }).kind === 'stop') void stop()
  })
  // The driver went away (crashed or was interrupted): do not outlive it.
  process.on('disconnect', () => void stop())
  process.on('SIGTERM', () => void stop())
  process.on('SIGINT', () => void stop())
  const ready: ReadyMessage = { kind: 'ready', port, storeDescription: runtime.storeDescription, tokens }
  send(ready)
}
