import { hkdfSync, randomUUID } from 'node:crypto'
import { chmod, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type Clock,
  type CorrelationId,
  createEngine,
  createInMemoryEventStore,
  createPublicIntake,
  type Engine,
  type EventStore,
  hashChainedStore,
  type IdGenerator,
  type Instant,
  type PatientKeyStore,
  type PublicIntake,
  type Routing,
  referralAggregate,
  type UserId,
  unsafeId,
} from '@referrals/core'
import {
  createAesGcmPhiCipher,
  createHmacBlindIndex,
  createInMemoryPatientKeyStore,
  createPostgresPatientKeyStore,
  MasterKey,
  sha256Hasher,
} from '@referrals/crypto'
import { createEventStoreDbEventStore } from '@referrals/eventstoredb'
import { runScheduler } from '@referrals/notify'
import {
  createPostgresEventStore,
  createPostgresReferralFacts,
  createPostgresReferralReadModel,
  type PostgresEventStore,
  type PostgresReferralFacts,
  type PostgresReferralReadModel,
  resolveDatabase,
} from '@referrals/postgres'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { buildApp, closeGracefully } from './app.js'
import type { Config } from './config.js'
import { encryptedIdempotencyStore, type IdempotencyStore, inMemoryIdempotencyStore } from './idempotency.js'
import { postgresIdempotencyStore, startIdempotencyPurge } from './idempotency-postgres.js'
import type { Notifications } from './notifications/index.js'
import { fileAttachmentStore, inMemoryAttachmentStore } from './routes/attachment-store.js'
import { registerResourceRoutes } from './routes/resources.js'

/** The system clock and random UUIDs: the production implementations of the core's ports. */
export const systemClock: Clock = { now: () => new Date().toISOString() as Instant }
export const uuidIds: IdGenerator = { next: () => randomUUID() }

export interface Runtime {
  readonly config: Config
  readonly store: EventStore
  readonly engine: Engine
  readonly routing: Routing
  /** The public referral-program intake (`/r/:code`), sealing intake PHI with the runtime's cipher. */
  readonly publicIntake: PublicIntake
  readonly keys: PatientKeyStore
  readonly idempotencyStore: IdempotencyStore
  /** Closes stores and pools, then stops the embedded database if one was started. */
  readonly close: () => Promise<void>
  readonly storeDescription: string
  /** The PostgreSQL pool of the key store and idempotency records (absent on the in-memory store). */
  readonly pool?: pg.Pool | undefined
  /** The PostgreSQL read model of referrals, when the store is PostgreSQL. */
  readonly readModel: PostgresReferralReadModel | undefined
  /** The referral-facts table of the reports (PostgreSQL only; elsewhere in memory on the engine). */
  readonly referralFacts: PostgresReferralFacts | undefined
  /**
   * Embedded PostgreSQL only: settles with a message when the server stops under the runtime (it
   * was killed, crashed, or its owner stopped it). The service cannot work without it: `serve`
   * and `scheduler` exit 1 with that message.
   */
  readonly databaseLost: Promise<string> | undefined
}

/**
 * Opens everything the service needs from its configuration: the event store (embedded
 * PostgreSQL unless `DATABASE_URL`, EventStoreDB, or in-memory), hash-chained for tamper
 * evidence; the patient key store (PostgreSQL schema `referrals_keys`, separate from the events)
 * and the AES-GCM PHI cipher; the blind index; the engine with routing.
 */
export const openRuntime = async (
  config: Config,
  options: {
    readonly clock?: Clock
    /** Wraps the event store the engine uses (under the hash chain), e.g. to count its calls in a benchmark. */
    readonly wrapStore?: (store: EventStore) => EventStore
  } = {},
): Promise<Runtime> => {
  const secret = config.masterKey
  if (secret === undefined)
    throw new Error('no master key: use loadConfig(), which provides a development key')
  const masterBytes = secret.reveal()
  const masterKey = MasterKey.fromBytes(masterBytes)
  const blindIndexKey = new Uint8Array(
    hkdfSync('sha256', masterBytes, Buffer.alloc(0), 'referrals/blind-index/v1', 32),
  )
  const closers: (() => Promise<void>)[] = []
  let inner: EventStore
  let keys: PatientKeyStore
  let idempotency: IdempotencyStore
  let storeDescription: string
  let postgresStore: PostgresEventStore | undefined
  let sharedPool: pg.Pool | undefined
  let databaseLost: Promise<string> | undefined
  if (config.store === 'memory') {
    inner = createInMemoryEventStore(options.clock === undefined ? {} : { clock: options.clock })
    keys = createInMemoryPatientKeyStore({ masterKey })
    idempotency = inMemoryIdempotencyStore()
    storeDescription = 'in-memory store (data is lost on exit)'
  } else {
    if (config.databaseUrl === undefined && process.getuid?.() === 0) {
      // Started by root, the embedded server drops to the `postgres` user, which must be able to
      // pass through the data directory (0711: traversable, not listable; keys inside stay 0600).
      await mkdir(config.dataDir, { recursive: true })
      await chmod(config.dataDir, 0o711)
    }
    const database =
      config.databaseUrl !== undefined
        ? {
            connectionString: config.databaseUrl.reveal(),
            stop: async () => undefined,
            embedded: false,
            shared: false,
            lost: undefined,
          }
        : await resolveDatabase({
            dataDir: join(config.dataDir, 'postgres'),
            ...(config.embeddedPostgresPort === undefined ? {} : { port: config.embeddedPostgresPort }),
          })
    closers.push(database.stop)
    databaseLost = database.lost
    // One pool for the key store and the idempotency records (their own schemas). Errors of idle
    // connections (a database restart) surface on the next query instead of crashing the process.
    const pool = new pg.Pool({ connectionString: database.connectionString, max: 10 })
    pool.on('error', () => undefined)
    sharedPool = pool
    closers.unshift(() => pool.end())
    keys = await createPostgresPatientKeyStore({ pool, masterKey })
    idempotency = await postgresIdempotencyStore({ pool })
    const purge = startIdempotencyPurge(pool)
    closers.unshift(() => purge.stop())
    if (config.store === 'eventstoredb') {
      const connectionString = config.eventStoreConnectionString?.reveal() ?? ''
      inner = createEventStoreDbEventStore({ connectionString })
      storeDescription = 'EventStoreDB (keys and idempotency records in PostgreSQL)'
    } else {
      const pgStore = await createPostgresEventStore({ connectionString: database.connectionString })
      postgresStore = pgStore
      inner = pgStore
      storeDescription = !database.embedded
        ? 'PostgreSQL (DATABASE_URL)'
        : database.shared
          ? 'embedded PostgreSQL, shared with the process that started it'
          : 'embedded PostgreSQL'
    }
  }
  closers.unshift(() => inner.close())
  const store = hashChainedStore(options.wrapStore?.(inner) ?? inner, sha256Hasher)
  const cipher = createAesGcmPhiCipher({ keys })
  const blindIndex = createHmacBlindIndex({ key: blindIndexKey })
  // On PostgreSQL the sent/received lists live in tables kept by a projection (rebuildable with
  // `referrals rebuild-projections`); elsewhere in memory, rebuilt from the log at start.
  const readModel =
    postgresStore === undefined
      ? undefined
      : await createPostgresReferralReadModel({
          store: postgresStore,
          aggregate: referralAggregate(undefined, cipher),
          blindIndex,
        })
  const referralFacts =
    postgresStore === undefined
      ? undefined
      : await createPostgresReferralFacts({
          store: postgresStore,
          aggregate: referralAggregate(undefined, cipher),
        })
  const engine = createEngine({
    store,
    clock: options.clock ?? systemClock,
    ids: uuidIds,
    cipher,
    blindIndex,
    ...(readModel === undefined ? {} : { referralIndex: () => readModel }),
    ...(referralFacts === undefined ? {} : { referralFacts: () => referralFacts }),
  })
  const routing = engine.routing
  return {
    config,
    store,
    engine,
    routing,
    publicIntake: createPublicIntake({ engine, cipher }),
    keys,
    idempotencyStore: encryptedIdempotencyStore(idempotency, masterBytes),
    storeDescription,
    readModel,
    referralFacts,
    pool: sharedPool,
    databaseLost,
    close: async () => {
      for (const close of closers) await close()
    },
  }
}

/** The HTTP application on a runtime (with the notification routes when notifications run). */
export const buildServer = (
  runtime: Runtime,
  notifications?: Pick<Notifications, 'registerRoutes'>,
): Promise<FastifyInstance> =>
  buildApp({
    store: runtime.store,
    config: runtime.config,
    resolveActor: (userId, roles) => runtime.engine.directory.resolveActor(userId as UserId, roles),
    idempotencyStore: runtime.idempotencyStore,
    registerRoutes: async (app) => {
      await registerResourceRoutes({
        engine: runtime.engine,
        routing: runtime.routing,
        attachments:
          runtime.config.store === 'memory'
            ? inMemoryAttachmentStore({ keys: runtime.keys })
            : fileAttachmentStore({ dir: join(runtime.config.dataDir, 'attachments'), keys: runtime.keys }),
        attachmentLimits: runtime.config,
        reportSuppressionThreshold: runtime.config.reportSuppressionThreshold,
        publicIntake: runtime.publicIntake,
        publicIntakeLimits: runtime.config.publicIntakeLimits,
      })(app)
      await notifications?.registerRoutes(app)
    },
  })

/**
 * Routes referrals left waiting in the intake queue — after a crash between a command and its
 * routing, a store blip, or (EventStoreDB) a half-written routing step — every `intervalMs`.
 * Idempotent, so any number of processes may run it.
 */
export const startRoutingRepair = (runtime: Runtime, intervalMs = 30_000): { stop: () => Promise<void> } => {
  const abort = new AbortController()
  const loop = runScheduler({
    intervalMs,
    signal: abort.signal,
    tick: () =>
      runtime.routing.repairAll({
        actor: { kind: 'system', component: 'routing-repair' },
        correlationId: unsafeId<CorrelationId>(`routing-repair:${randomUUID()}`),
      }),
  })
  return {
    stop: async () => {
      abort.abort()
      await loop
    },
  }
}

/** Stops the server gracefully (in-flight requests finish), then the runtime. */
export const stopServer = async (app: FastifyInstance, runtime: Runtime): Promise<void> => {
  await closeGracefully(app, { stopEmbedded: runtime.close })
}
