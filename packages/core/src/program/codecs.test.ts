import { isLeft, isRight } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { ProgramCommandPayload, ProgramEvent } from './codecs.js'
import { consentV1, linkACreated, programCreated } from './fixtures.js'
import { LinkCode, linkCodeFromBytes, sequentialLinkCodes } from './link-code.js'
import { programIdFromStreamId, programStreamId } from './stream.js'

describe('ProgramCommandPayload', () => {
  it('decodes CreateReferralLink and drops unknown fields', () => {
    const decoded = ProgramCommandPayload.decode({
      type: 'CreateReferralLink',
      data: {
        linkId: 'l1',
        code: 'ABCDEFGH12',
        attribution: { channel: 'email', referringPersonId: 'ref-9', patientName: 'x' },
        extra: true,
      },
    })
    expect(isRight(decoded) && decoded.right).toEqual({
      type: 'CreateReferralLink',
      data: {
        linkId: 'l1',
        code: 'ABCDEFGH12',
        attribution: { channel: 'email', referringPersonId: 'ref-9' },
      },
    })
  })

  it('rejects blank consent text, unknown targets and unknown command types', () => {
    expect(
      isLeft(
        ProgramCommandPayload.decode({
          type: 'PublishConsentVersion',
          data: { consentText: '  ', disclosureText: 'd' },
        }),
      ),
    ).toBe(true)
    expect(
      isLeft(
        ProgramCommandPayload.decode({
          type: 'CreateProgram',
          data: { programId: 'p', practiceId: 'c', name: 'N', target: { kind: 'anywhere' } },
        }),
      ),
    ).toBe(true)
    expect(isLeft(ProgramCommandPayload.decode({ type: 'EditConsentVersion', data: {} }))).toBe(true)
  })
})

describe('ProgramEvent', () => {
  it('round-trips events through JSON', () => {
    for (const event of [programCreated, consentV1, linkACreated]) {
      const decoded = ProgramEvent.decode(JSON.parse(JSON.stringify(event)))
      expect(isRight(decoded) && ProgramEvent.encode(decoded.right)).toEqual(event)
    }
  })

  it('rejects a consent version that is not a positive integer', () => {
    const bad = { ...consentV1, data: { ...consentV1.data, version: 0 } }
    expect(isLeft(ProgramEvent.decode(bad))).toBe(true)
  })
})

describe('link codes', () => {
  it('accepts 10 to 32 unambiguous base32 characters only', () => {
    expect(LinkCode.is('ABCDEFGH12')).toBe(true)
    for (const bad of ['ABCDEFGH1', 'ABCDEFGHIL', 'abcdefgh12', 'ABCDEFGHO0', 'A'.repeat(33)]) {
      expect(LinkCode.is(bad)).toBe(false)
    }
  })

  it('spells bytes in the alphabet and refuses too few or too many', () => {
    expect(linkCodeFromBytes(new Uint8Array([0, 1, 10, 17, 18, 31, 32, 255, 30, 21]))).toBe('01AHJZ0ZYN')
    expect(() => linkCodeFromBytes(new Uint8Array(9))).toThrow()
    expect(() => linkCodeFromBytes(new Uint8Array(33))).toThrow()
  })

  it('sequential codes are valid and distinct', () => {
    const codes = sequentialLinkCodes()
    const a = codes.next()
    const b = codes.next()
    expect([a, b]).toEqual(['TEST000001', 'TEST000002'])
    expect(LinkCode.is(a)).toBe(true)
  })
})

describe('program streams', () => {
  it('names the stream program-<id> and reads the id back', () => {
    expect(programStreamId(programCreated.data.programId)).toBe('program-prog-1')
    expect(programIdFromStreamId('program-prog-1')).toBe('prog-1')
    expect(programIdFromStreamId('practice-prog-1')).toBeNull()
    expect(programIdFromStreamId('program-')).toBeNull()
  })
})
