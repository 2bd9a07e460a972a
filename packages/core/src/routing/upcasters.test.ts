import { readFileSync } from 'node:fs'
import { isLeft, isRight } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { upcasterChain } from '../envelope/upcast.js'
import type { CommandMeta } from '../shared/decider.js'
import type { CommandId, CorrelationId, InsuranceNetworkId, ReferralId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import {
  type FteMilli,
  type PoolCommand,
  type PoolCommandBody,
  PoolEvent,
  type RankedCandidate,
  type ReferralRoutedEvent,
} from './codecs.js'
import { poolDecider, poolEngine } from './decider.js'
import { explainCandidates, explainRouting, verifyRouting, virtualTimeString } from './explain.js'
import { poolEventSchemaVersion, poolUpcasters, referralRoutedV1ToV2 } from './upcasters.js'

interface Stored {
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
}

/** A pool stream written before issue 12 (policy v1, ReferralRouted at schema version 1). */
const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/v1-pool-stream.json', import.meta.url), 'utf8'),
) as { events: Stored[] }

const upcast = upcasterChain(poolUpcasters)

const meta: CommandMeta = {
  commandId: 'up' as CommandId,
  actor: { kind: 'system', component: 'test' },
  now: '2026-01-01T00:00:00.000Z' as Instant,
  correlationId: 'corr' as CorrelationId,
}

const decode = (stored: Stored): PoolEvent => {
  const current = upcast(stored)
  expect(current.schemaVersion).toBe(poolEventSchemaVersion(current.type))
  const decoded = PoolEvent.decode({ type: current.type, data: current.data })
  if (!isRight(decoded)) throw new Error(`stored ${stored.type} does not decode after upcasting`)
  return decoded.right
}

describe('ReferralRouted v1 → v2 (old pool streams)', () => {
  const events = fixture.events.map(decode)

  it('every stored event of a v1 stream decodes after upcasting', () => {
    expect(events).toHaveLength(fixture.events.length)
    expect(fixture.events.filter((e) => e.type === 'ReferralRouted').length).toBeGreaterThan(200)
  })

  it('verifyRouting re-derives every decision of the old stream (policy v1 is replayed as v1)', () => {
    const v = verifyRouting(events)
    expect(v.mismatches).toEqual([])
    expect(v.decisions).toBe(
      fixture.events.filter((e) => e.type.startsWith('R') && e.type !== 'ReferralReleased').length,
    )
  })

  it('the explanation formats exactly the fractions version 1 recorded', () => {
    for (const [i, stored] of fixture.events.entries()) {
      if (stored.type !== 'ReferralRouted') continue
      const old = stored.data as { virtualTime: string; candidates: RankedCandidate[] }
      const e = events[i] as ReferralRoutedEvent
      expect(virtualTimeString(e)).toBe(old.virtualTime)
      expect(explainCandidates(e)).toEqual(old.candidates)
    }
    const declined = fixture.events.find((e) => e.type === 'DeclineRecorded')
    const someone = (declined?.data as { referralId: string } | undefined)?.referralId ?? ''
    const x = explainRouting(events, someone as ReferralRoutedEvent['data']['referralId'])
    expect(x.decisions.length).toBeGreaterThan(1)
    expect(x.decisions.every((d) => d.verified)).toBe(true)
  })

  it('an old stream continued under policy v2 (an upgraded service) still re-derives every decision', () => {
    let state = events.reduce(poolDecider.evolve, poolDecider.initialState)
    const log = [...events]
    const run = (body: PoolCommandBody, n: number) => {
      const r = poolDecider.decide({ ...body, meta: { ...meta, commandId: `up-${n}` } } as PoolCommand, state)
      if (isLeft(r)) throw new Error(r.left.code)
      for (const e of r.right) {
        log.push(e)
        state = poolDecider.evolve(state, e)
      }
      return r.right
    }
    const ids = poolEngine(state).memberIds()
    for (let i = 0; i < 200; i++) {
      const [e] = run(
        {
          type: 'RouteReferral',
          data: { referralId: `up-r${i}` as ReferralId, insuranceNetworkId: null, excludedPracticeIds: [] },
        },
        i,
      )
      if (i % 5 === 0 && e?.type === 'ReferralRouted') {
        run(
          {
            type: 'RecordDecline',
            data: { referralId: e.data.referralId, practiceId: e.data.chosenPracticeId, kind: 'decline' },
          },
          1000 + i,
        )
        run(
          {
            type: 'RouteReferral',
            data: {
              referralId: e.data.referralId,
              insuranceNetworkId: null,
              excludedPracticeIds: [e.data.chosenPracticeId],
            },
          },
          2000 + i,
        )
      }
      const id = ids[i % ids.length] as string
      const m = poolEngine(state).member(id)
      if (i % 7 === 0 && m !== undefined && m.status !== 'left') {
        run(
          {
            type: 'SyncPoolMember',
            data: {
              practiceId: m.practiceId,
              eligible: true,
              fteMilli: m.fteMilli as FteMilli,
              insuranceNetworks: m.insuranceNetworks as InsuranceNetworkId[],
              paused: m.status === 'active',
            },
          },
          3000 + i,
        )
      }
    }
    expect(
      log.filter((e) => e.type === 'ReferralRouted' && e.data.policy.version === 2).length,
    ).toBeGreaterThan(200)
    const v = verifyRouting(log)
    expect(v.mismatches).toEqual([])
  })

  it('a ReferralRouted already at version 2 and foreign data are left alone', () => {
    const v2 = events.find((e) => e.type === 'ReferralRouted') as ReferralRoutedEvent
    expect(upcast({ type: 'ReferralRouted', schemaVersion: 2, data: v2.data }).data).toBe(v2.data)
    expect(referralRoutedV1ToV2.upcast('garbage')).toBe('garbage')
    expect(referralRoutedV1ToV2.upcast({ virtualTime: 'x/y', candidates: [] })).toEqual({
      virtualTime: 'x/y',
      candidates: [],
    })
    expect(poolEventSchemaVersion('MemberJoined')).toBe(1)
  })
})
