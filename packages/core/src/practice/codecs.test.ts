import { isLeft, isRight } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { type PracticeId, unsafeId } from '../shared/ids.js'
import { PracticeCommandPayload, PracticeEvent } from './codecs.js'
import { practiceIdFromStreamId, practiceStreamId } from './stream.js'

describe('PracticeCommandPayload', () => {
  it('decodes a command and drops unknown fields', () => {
    const decoded = PracticeCommandPayload.decode({
      type: 'AddMember',
      data: { userId: 'bob', role: 'staff', isAdmin: true },
      extra: 1,
    })
    expect(isRight(decoded) && decoded.right).toEqual({
      type: 'AddMember',
      data: { userId: 'bob', role: 'staff' },
    })
  })

  it('rejects unknown command types, bad roles and invalid FTE', () => {
    expect(isLeft(PracticeCommandPayload.decode({ type: 'DeletePractice', data: {} }))).toBe(true)
    expect(
      isLeft(PracticeCommandPayload.decode({ type: 'AddMember', data: { userId: 'bob', role: 'god' } })),
    ).toBe(true)
    for (const fte of [0, -1, 11, 0.0001, Number.NaN, '1']) {
      expect(isLeft(PracticeCommandPayload.decode({ type: 'ChangeFte', data: { fte } }))).toBe(true)
    }
  })

  it('decodes PauseReceiving with and without a reason', () => {
    expect(isRight(PracticeCommandPayload.decode({ type: 'PauseReceiving', data: {} }))).toBe(true)
    expect(
      isRight(PracticeCommandPayload.decode({ type: 'PauseReceiving', data: { reason: 'leave' } })),
    ).toBe(true)
    expect(isLeft(PracticeCommandPayload.decode({ type: 'PauseReceiving', data: { reason: 3 } }))).toBe(true)
  })
})

describe('PracticeEvent', () => {
  it('round-trips events through JSON', () => {
    const events = [
      { type: 'PracticeCreated', data: { practiceId: 'p1', name: 'N', kind: 'clinic', ownerId: 'alice' } },
      {
        type: 'SpecialistConfigured',
        data: {
          practiceId: 'p1',
          specialtyId: 'ortho',
          regions: ['north'],
          categories: [{ categoryId: 'knee', subcategoryId: 'arthro' }],
          fte: 0.5,
          insuranceNetworks: [],
          preferredProviderListed: true,
        },
      },
      { type: 'FteChanged', data: { practiceId: 'p1', previous: 1, fte: 0.5 } },
      { type: 'ReceivingPaused', data: { practiceId: 'p1', reason: 'leave' } },
      { type: 'ReceivingPaused', data: { practiceId: 'p1' } },
    ]
    for (const event of events) {
      const decoded = PracticeEvent.decode(JSON.parse(JSON.stringify(event)))
      expect(isRight(decoded) && PracticeEvent.encode(decoded.right)).toEqual(event)
    }
  })

  it('rejects an event with a missing field', () => {
    expect(isLeft(PracticeEvent.decode({ type: 'FteChanged', data: { practiceId: 'p1', fte: 0.5 } }))).toBe(
      true,
    )
  })
})

describe('practice streams', () => {
  it('names the stream practice-<id> and reads the id back', () => {
    expect(practiceStreamId(unsafeId<PracticeId>('p_1'))).toBe('practice-p_1')
    expect(practiceIdFromStreamId('practice-p_1')).toBe('p_1')
    expect(practiceIdFromStreamId('referral-p_1')).toBeNull()
    expect(practiceIdFromStreamId('practice-')).toBeNull()
  })
})
