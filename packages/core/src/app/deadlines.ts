import * as E from 'fp-ts/lib/Either.js'
import {
  defaultResponsePolicy,
  dueDeadlines,
  type ReferralDeadline,
  type ReferralResponsePolicy,
} from '../referral/index.js'
import type { Actor } from '../shared/actor.js'
import { type CommandId, type CorrelationId, unsafeId } from '../shared/ids.js'
import type { Clock } from '../shared/time.js'
import type { CommandFailure } from './command-handler.js'
import type { Engine } from './engine.js'

export const SCHEDULER_ACTOR: Actor = { kind: 'system', component: 'scheduler' }

const ID_MAX = 128

/** FNV-1a (32 bit), only to shorten an over-long id deterministically; not a security measure. */
const fnv1a = (s: string): string => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h.toString(16).padStart(8, '0')
}

/**
 * The command id of a deadline: the same for every scheduler and every restart, so the commands
 * two schedulers issue for one deadline are recognisably the same command in the event metadata.
 * Ids longer than the id alphabet allows keep a prefix and a hash of the whole.
 */
export const deadlineCommandId = (deadline: ReferralDeadline): CommandId => {
  const id = `deadline:${deadline.referralId}:${deadline.kind}:${
    deadline.kind === 'patient_reminder' ? (deadline.sequence ?? 0) : deadline.deliveryNo
  }`
  return unsafeId<CommandId>(id.length <= ID_MAX ? id : `${id.slice(0, ID_MAX - 9)}.${fnv1a(id)}`)
}

export interface DeadlineFailure {
  readonly deadlineId: string
  readonly error: CommandFailure
}

export interface TickResult {
  /** Deadlines acted on by this tick (their command produced events). */
  readonly issued: number
  /** Due deadlines whose command produced nothing: another scheduler already acted, or it went stale. */
  readonly skipped: number
  readonly failures: readonly DeadlineFailure[]
}

export interface DeadlineScheduler {
  /** Finds every due deadline and issues its command once; never throws for a failing command. */
  readonly tick: () => Promise<TickResult>
}

/**
 * The deadline scheduler (SPEC "Notifications and time"): deadlines are computed from the event
 * log (`referralIndex.open()` + `dueDeadlines`) and the injected clock, and each due one becomes
 * a system command on the referral's stream. It keeps no state of its own, so exactly-once comes
 * from the store, not from this object:
 *
 * - the decider ignores a stale or repeated command (a deliveryNo/sequence already acted on), and
 * - the command is decided on the version it appends with (`exact(n)`): when two schedulers race,
 *   one append wins and the other is decided again on the new state, where it yields no events.
 *
 * So several schedulers may tick at once, and a restarted one simply recomputes what is due.
 * There are no timers here: the caller runs `tick` on an interval (`runScheduler` in
 * `@referrals/notify`). The policy must be the engine's response policy.
 */
export const createDeadlineScheduler = (
  engine: Engine,
  options: { readonly clock: Clock; readonly policy?: ReferralResponsePolicy },
): DeadlineScheduler => {
  const policy = options.policy ?? defaultResponsePolicy
  return {
    tick: async () => {
      const now = options.clock.now()
      const open = await engine.referralIndex.open()
      let issued = 0
      let skipped = 0
      const failures: DeadlineFailure[] = []
      for (const state of open) {
        for (const deadline of dueDeadlines(state, policy, now)) {
          const commandId = deadlineCommandId(deadline)
          const result = await engine.referrals.execute(deadline.referralId, deadline.command, {
            actor: SCHEDULER_ACTOR,
            correlationId: unsafeId<CorrelationId>(commandId),
            commandId,
          })()
          if (E.isLeft(result)) failures.push({ deadlineId: deadline.id, error: result.left })
          else if (result.right.produced.length > 0) issued++
          else skipped++
        }
      }
      return { issued, skipped, failures }
    },
  }
}
