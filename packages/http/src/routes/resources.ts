import type { Engine, LinkCodeGenerator, PublicIntake, Routing } from '@referrals/core'
import type { FastifyInstance } from 'fastify'
import { auditorsAreReadOnly } from './access.js'
import type { AttachmentStore } from './attachment-store.js'
import { type AttachmentLimits, DEFAULT_ATTACHMENT_LIMITS, registerAttachmentRoutes } from './attachments.js'
import { auditRoutes } from './audit.js'
import { catalogRoutes } from './catalog.js'
import { dashboardRoutes } from './dashboard.js'
import { fhirRoutes } from './fhir.js'
import { listRoutes } from './lists.js'
import { meRoutes } from './me.js'
import { practiceRoutes } from './practices.js'
import { programReportRoutes } from './program-reports.js'
import { programRoutes } from './programs.js'
import { type PublicIntakeLimits, publicIntakeRoutes } from './public-intake.js'
import { referralRoutes } from './referrals.js'
import { reportRoutes } from './reports.js'

export interface ResourceDeps {
  readonly engine: Engine
  readonly routing: Routing
  /** Encrypted attachment content; without it the attachment routes are not registered. */
  readonly attachments?: AttachmentStore
  /** Upload limits (default: 20 MiB; PDF, PNG, JPEG); pass the `Config`. */
  readonly attachmentLimits?: AttachmentLimits
  /** Small-number suppression of the reports (default 5); pass `Config.reportSuppressionThreshold`. */
  readonly reportSuppressionThreshold?: number
  /** Codes of new referral links (default: 16 characters from the OS's cryptographic source). */
  readonly linkCodes?: LinkCodeGenerator
  /** The public referral-program intake (`/r/:code`); without it those pages are not registered. */
  readonly publicIntake?: PublicIntake
  readonly publicIntakeLimits?: PublicIntakeLimits
}

/**
 * The resource routes: one Fastify plugin per resource (`me.ts`, `practices.ts`, `catalog.ts`,
 * `referrals.ts`, `lists.ts`, `audit.ts`, `reports.ts`, `dashboard.ts`, `programs.ts`, `attachments.ts`,
 * `public-intake.ts`), each calling the access rules of
 * `access.ts`. The auditor hook is added to the given instance itself (not encapsulated), so it
 * also covers routes registered after these (the notification routes).
 */
export const registerResourceRoutes =
  (deps: ResourceDeps) =>
  async (app: FastifyInstance): Promise<void> => {
    const { engine, routing } = deps
    app.addHook('preHandler', auditorsAreReadOnly)
    await app.register(meRoutes)
    await app.register(practiceRoutes, { engine })
    await app.register(catalogRoutes, { engine })
    await app.register(referralRoutes, { engine, routing })
    await app.register(fhirRoutes, { engine })
    await app.register(listRoutes, { engine })
    await app.register(auditRoutes, { engine })
    await app.register(reportRoutes, {
      engine,
      ...(deps.reportSuppressionThreshold === undefined
        ? {}
        : { suppressionThreshold: deps.reportSuppressionThreshold }),
    })
    await app.register(programReportRoutes, {
      engine,
      ...(deps.reportSuppressionThreshold === undefined
        ? {}
        : { suppressionThreshold: deps.reportSuppressionThreshold }),
    })
    await app.register(dashboardRoutes)
    await app.register(programRoutes, {
      engine,
      ...(deps.linkCodes === undefined ? {} : { linkCodes: deps.linkCodes }),
    })
    if (deps.publicIntake !== undefined) {
      await app.register(publicIntakeRoutes, {
        intake: deps.publicIntake,
        today: () => engine.clock.now().slice(0, 10),
        ...(deps.publicIntakeLimits === undefined ? {} : { limits: deps.publicIntakeLimits }),
      })
    }
    if (deps.attachments !== undefined) {
      await registerAttachmentRoutes(app, {
        engine,
        store: deps.attachments,
        limits: deps.attachmentLimits ?? DEFAULT_ATTACHMENT_LIMITS,
      })
    }
  }

export { csvCell } from './csv.js'
