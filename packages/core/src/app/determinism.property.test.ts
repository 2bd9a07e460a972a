import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { DomainEvent } from '../shared/decider.js'
import { type PracticeId, type ReferralId, unsafeId } from '../shared/ids.js'
import type { StoredEvent } from '../store/port.js'
import { createWorld } from '../testing/world.js'
import type { Aggregate } from './command-handler.js'
import { catalogAggregate, practiceAggregate } from './engine.js'
import { poolAggregate } from './routing-manager.js'

// Random referral traffic through the real engine (sends, accepts, declines, expiries by time,
// schedules, completions, cancellations, pauses and resumes), then checks over everything stored:
// every event's codec round-trips its stored data, and folding a stream twice gives equal states.

type Op =
  | { readonly kind: 'send'; readonly direct: boolean }
  | { readonly kind: 'decline' | 'accept' | 'schedule' | 'complete' | 'cancel'; readonly pick: number }
  | { readonly kind: 'pause' | 'resume'; readonly who: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('send' as const), direct: fc.boolean() }),
  fc.record({
    kind: fc.constantFrom(
      'decline' as const,
      'accept' as const,
      'schedule' as const,
      'complete' as const,
      'cancel' as const,
    ),
    pick: fc.nat(),
  }),
  fc.record({ kind: fc.constantFrom('pause' as const, 'resume' as const), who: fc.nat() }),
)

const asAggregate = (a: unknown) => a as Aggregate<never, DomainEvent, unknown>

describe('engine determinism and codec round trips over random traffic', () => {
  it('round-trips every stored event through its codec and folds every stream to equal states twice', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const w = await createWorld()
        const specialists = [await w.addSpecialist('spec-a', 1), await w.addSpecialist('spec-b', 0.5)]
        const sent: string[] = []
        for (const [i, o] of ops.entries()) {
          const referral = sent[('pick' in o ? o.pick : 0) % Math.max(sent.length, 1)]
          const holderCtx = async () => w.as(w.ownerOf(String(await w.holderOf(String(referral)))))
          const exec = async (
            payload: Parameters<typeof w.engine.referrals.execute>[1],
            ctx: Parameters<typeof w.engine.referrals.execute>[2],
          ) => w.engine.referrals.execute(unsafeId<ReferralId>(String(referral)), payload, ctx)()
          switch (o.kind) {
            case 'send': {
              const id = `r-${i}`
              const target = o.direct
                ? { kind: 'direct' as const, practiceId: specialists[i % 2] as PracticeId }
                : { kind: 'pooled' as const }
              // Rule refusals (e.g. direct to a paused practice) are part of the traffic.
              await w.engine.referrals.execute(
                unsafeId<ReferralId>(id),
                { type: 'SendReferral', data: w.sendData(id, target) },
                await w.as(w.ownerOf(w.ids.clinic)),
              )()
              sent.push(id)
              break
            }
            case 'decline':
              if (referral)
                await exec({ type: 'DeclineReferral', data: { reasonCode: 'capacity' } }, await holderCtx())
              break
            case 'accept':
              if (referral) await exec({ type: 'AcceptReferral', data: {} }, await holderCtx())
              break
            case 'schedule':
              if (referral)
                await exec(
                  { type: 'ScheduleAppointment', data: { at: '2026-06-01T10:00:00.000Z' as never } },
                  await holderCtx(),
                )
              break
            case 'complete':
              if (referral) await exec({ type: 'CompleteReferral', data: {} }, await holderCtx())
              break
            case 'cancel':
              if (referral)
                await exec(
                  { type: 'CancelReferral', data: { reasonCode: 'no_longer_needed' } },
                  await w.as(w.ownerOf(w.ids.clinic)),
                )
              break
            case 'pause':
            case 'resume': {
              const who = specialists[o.who % 2] as PracticeId
              await w.engine.practices.execute(
                who,
                { type: o.kind === 'pause' ? 'PauseReceiving' : 'ResumeReceiving', data: {} },
                await w.as(w.ownerOf(who)),
              )()
              break
            }
          }
          w.clock.advance(7 * 3_600_000)
        }

        const all = await w.store.readAll()()
        if (E.isLeft(all)) throw new Error(all.left.message)
        const aggregates: Record<string, Aggregate<never, DomainEvent, unknown>> = {
          practice: asAggregate(practiceAggregate),
          catalog: asAggregate(catalogAggregate),
          referral: asAggregate(w.engine.referrals.aggregate),
          pool: asAggregate(poolAggregate()),
        }
        const byStream = new Map<string, StoredEvent[]>()
        for (const e of all.right) byStream.set(e.streamId, [...(byStream.get(e.streamId) ?? []), e])
        for (const [streamId, stored] of byStream) {
          const aggregate = aggregates[streamId.slice(0, streamId.indexOf('-'))]
          if (aggregate === undefined) continue
          const decoded = stored.map((s) => {
            const d = aggregate.catalog.decode(s)
            if (E.isLeft(d)) throw new Error(`${streamId} v${s.version}: ${d.left.message}`)
            // encode(decode(stored)) gives back exactly the stored data.
            expect(aggregate.catalog.encode(d.right)).toEqual({
              type: s.type,
              schemaVersion: s.schemaVersion,
              data: s.data,
            })
            return d.right
          })
          const fold = () => decoded.reduce(aggregate.decider.evolve, aggregate.decider.initialState)
          const first = fold()
          const second = fold()
          expect(JSON.stringify(second, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).toEqual(
            JSON.stringify(first, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
          )
        }
      }),
      { numRuns: 40 },
    )
  })
})
