import {
  createEngine,
  createInMemoryEventStore,
  createPublicIntake,
  hashChainedStore,
  type Instant,
  manualClock,
  type PatientKeyStore,
  sequentialUuids,
  type UserId,
} from '@referrals/core'
import {
  createAesGcmPhiCipher,
  createInMemoryPatientKeyStore,
  MasterKey,
  sha256Hasher,
} from '@referrals/crypto'
import {
  createDecisionLinks,
  inMemoryOutbox,
  inMemoryPreferences,
  inMemoryUsedLinks,
} from '@referrals/notify'
import { registerNotificationRoutes } from '../notifications/routes.js'
import { buildTestApp } from '../testing.js'
import { type AttachmentStore, inMemoryAttachmentStore } from './attachment-store.js'
import type { AttachmentLimits } from './attachments.js'
import type { PublicIntakeLimits } from './public-intake.js'
import { registerResourceRoutes } from './resources.js'

/**
 * Test support for the resource routes: the in-memory engine with routing and attachments behind
 * the real app, a small world (specialty `ortho` with category `knee`; clinic `clinic` owned by
 * `dr-gp`; verified specialist practices `spec-a` (`dr-spec`) and `spec-b` (`dr-other`)), and
 * tokens for each user plus `admin`, `auditor` and `stranger`.
 */
export const CANARY_NAME = 'Zebulon-Canary'
export const CANARY_REASON = 'canary-reason-knee-7731'

export const USERS = {
  admin: { userId: 'admin', roles: ['admin'] as const },
  auditor: { userId: 'auditor', roles: ['auditor'] as const },
  gp: { userId: 'dr-gp', roles: [] },
  spec: { userId: 'dr-spec', roles: [] },
  other: { userId: 'dr-other', roles: [] },
  stranger: { userId: 'stranger', roles: [] },
} as const
export type Who = keyof typeof USERS

export interface RoutesTestOptions {
  readonly attachmentLimits?: AttachmentLimits
  /** The attachment store over the fixture's key store (default: in memory). */
  readonly attachmentStore?: (keys: PatientKeyStore) => AttachmentStore
  readonly env?: Readonly<Record<string, string>>
  /** Also the notification routes (in-memory outbox and preferences), as `serve` has them: the whole API. */
  readonly withNotifications?: boolean
  /**
   * Seal PHI in the events with AES-GCM under the fixture's patient keys, as `serve` does, so that
   * `keys.destroy(patientId)` forgets the patient (default: PHI stored as sent).
   */
  readonly sealPhi?: boolean
  /** Budgets of the public intake pages (default: too large to matter, for fuzzing). */
  readonly publicIntakeLimits?: PublicIntakeLimits
  /** Write through `hashChainedStore` (as `serve` does), so `verifyEventStore(eventStore)` can check the chain. */
  readonly hashChain?: boolean
}

const UNLIMITED_INTAKE: PublicIntakeLimits = {
  submitsPerAddress: { max: 1_000_000, windowMs: 60_000 },
  requestsPerLink: { max: 1_000_000, windowMs: 60_000 },
}

export const buildRoutesTestApp = async (options: RoutesTestOptions = {}) => {
  const clock = manualClock('2026-04-01T09:00:00.000Z' as Instant)
  const store = createInMemoryEventStore({ clock })
  const keys = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
  const cipher = options.sealPhi === true ? createAesGcmPhiCipher({ keys }) : undefined
  // The engine and the app write through the hash chain when asked; `store` stays the raw log.
  const eventStore = options.hashChain === true ? hashChainedStore(store, sha256Hasher) : store
  const engine = createEngine({
    store: eventStore,
    clock,
    ids: sequentialUuids(),
    ...(cipher === undefined ? {} : { cipher }),
  })
  const routing = engine.routing
  const publicIntake = createPublicIntake({ engine, ...(cipher === undefined ? {} : { cipher }) })
  const attachments = options.attachmentStore?.(keys) ?? inMemoryAttachmentStore({ keys })
  const testApp = await buildTestApp({
    store: eventStore,
    // Fuzzing and matrix tests send thousands of requests from one user.
    env: { RATE_LIMIT_MAX: '1000000', ...options.env },
    resolveActor: (userId, roles) => engine.directory.resolveActor(userId as UserId, roles),
    registerRoutes: async (app) => {
      await registerResourceRoutes({
        engine,
        routing,
        attachments,
        ...(options.attachmentLimits === undefined ? {} : { attachmentLimits: options.attachmentLimits }),
        publicIntake,
        publicIntakeLimits: options.publicIntakeLimits ?? UNLIMITED_INTAKE,
      })(app)
      if (options.withNotifications === true) {
        await registerNotificationRoutes({
          engine,
          outbox: inMemoryOutbox(),
          preferences: inMemoryPreferences(),
          links: createDecisionLinks({
            secret: 'documented-app-decision-link-secret-0123456789',
            clock,
            usedStore: inMemoryUsedLinks(),
          }),
          webhookPolicy: { httpsOnly: true, allowPrivate: false },
        })(app)
      }
    },
  })
  const app = testApp.app
  const tokens = {} as Record<Who, string>
  for (const [who, user] of Object.entries(USERS) as [Who, (typeof USERS)[Who]][]) {
    tokens[who] = await testApp.token({ userId: user.userId, roles: [...user.roles] })
  }
  const call = (
    who: Who | 'anonymous',
    method: 'GET' | 'POST',
    url: string,
    payload?: unknown,
    headers: Record<string, string> = {},
  ) =>
    app.inject({
      method,
      url,
      headers: { ...(who === 'anonymous' ? {} : { authorization: `Bearer ${tokens[who]}` }), ...headers },
      ...(payload === undefined ? {} : { payload: payload as object }),
    })
  const ok = async (who: Who, method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await call(who, method, url, payload)
    if (res.statusCode >= 300) throw new Error(`${method} ${url} -> ${res.statusCode} ${res.body}`)
    return res
  }
  const settings = {
    specialtyId: 'ortho',
    regions: ['north'],
    categories: [{ categoryId: 'knee' }],
    fte: 1,
    insuranceNetworks: [],
    preferredProviderListed: true,
  }
  await ok('admin', 'POST', '/specialties', { specialtyId: 'ortho', name: 'Orthopedics' })
  await ok('admin', 'POST', '/specialties/ortho/categories', { categoryId: 'knee', name: 'Knee' })
  await ok('gp', 'POST', '/practices', { practiceId: 'clinic', name: 'Clinic', kind: 'clinic' })
  for (const [who, practiceId] of [
    ['spec', 'spec-a'],
    ['other', 'spec-b'],
  ] as const) {
    await ok(who, 'POST', '/practices', { practiceId, name: practiceId, kind: 'specialist' })
    await ok(who, 'POST', `/practices/${practiceId}/specialist-settings`, settings)
    await ok('admin', 'POST', `/practices/${practiceId}/verify`, {})
  }
  /** A referral from `clinic`, direct to `spec-a` unless `pooled`. */
  const referral = (referralId: string, target: 'direct' | 'pooled' = 'direct') => ({
    referralId,
    senderPracticeId: 'clinic',
    patientId: `pat-${referralId}`,
    phi: {
      patient: {
        givenName: CANARY_NAME,
        familyName: 'Example',
        dateOfBirth: '1975-06-01',
        healthNumber: 'HN-CANARY-1',
      },
      reason: CANARY_REASON,
    },
    specialtyId: 'ortho',
    category: { categoryId: 'knee' },
    regionId: 'north',
    urgency: 'routine',
    target: target === 'direct' ? { kind: 'direct', practiceId: 'spec-a' } : { kind: 'pooled' },
  })
  /** Stored events except the audit streams (PHI reads are recorded even when a request fails). */
  const domainEvents = () => store.snapshot().filter((e) => !e.streamId.startsWith('audit-'))
  return {
    app,
    store,
    eventStore,
    engine,
    publicIntake,
    clock,
    keys,
    attachments,
    call,
    ok,
    referral,
    domainEvents,
    logs: testApp.logs,
    token: testApp.token,
  }
}
export type RoutesTestApp = Awaited<ReturnType<typeof buildRoutesTestApp>>
