import { describe, expect, it } from 'vitest'
import { decodeSmsPart, type EncodedSms, encodeSms, isGsm7, splitSms } from './sms-encoding.js'

/** Part `i` of an encoded message (fails the test when it is missing). */
const partOf = (sms: EncodedSms, i: number): Buffer => {
  const part = sms.parts[i]
  if (part === undefined) throw new Error(`no part ${i}`)
  return part
}

describe('splitSms', () => {
  it('keeps GSM-7 text of up to 160 septets in one part', () => {
    const text = 'a'.repeat(160)
    expect(splitSms(text)).toEqual({ encoding: 'gsm7', parts: [text] })
    expect(splitSms('@£$¥èé Ç ÄÖÑÜ§¿ äöñüà')).toMatchObject({ encoding: 'gsm7' })
  })

  it('splits 161 septets into 153 + 8', () => {
    const { encoding, parts } = splitSms('b'.repeat(161))
    expect(encoding).toBe('gsm7')
    expect(parts.map((p) => p.length)).toEqual([153, 8])
    expect(splitSms('c'.repeat(306)).parts.map((p) => p.length)).toEqual([153, 153])
    expect(splitSms('c'.repeat(307)).parts.map((p) => p.length)).toEqual([153, 153, 1])
  })

  it('counts extension characters as two septets and never splits an escape pair', () => {
    // 80 euro signs = 160 septets: one message.
    expect(splitSms('€'.repeat(80)).parts).toHaveLength(1)
    // 81 = 162 septets: split; 153 is odd, so the first part holds 76 (152 septets), not 76.5.
    const parts = splitSms('€'.repeat(81)).parts
    expect(parts.map((p) => p.length)).toEqual([76, 5])
    expect(splitSms('^{}\\[~]|€').encoding).toBe('gsm7')
    // 159 plain + one extension char = 161 septets.
    expect(splitSms(`${'a'.repeat(159)}{`).parts).toEqual(['a'.repeat(153), `${'a'.repeat(6)}{`])
  })

  it('falls back to UCS-2 for non-GSM text: 70 per message, 67 per part', () => {
    expect(isGsm7('Ça va?')).toBe(true)
    expect(isGsm7('ç')).toBe(false) // lower-case c-cedilla is not in GSM 03.38
    expect(splitSms('ж'.repeat(70))).toEqual({ encoding: 'ucs2', parts: ['ж'.repeat(70)] })
    expect(splitSms('ж'.repeat(71)).parts.map((p) => p.length)).toEqual([67, 4])
    // One non-GSM char turns the whole text into UCS-2.
    expect(splitSms(`${'a'.repeat(100)}ç`).parts.map((p) => p.length)).toEqual([67, 34])
  })

  it('never splits a surrogate pair', () => {
    // 33 emoji = 66 code units + 'x' = 67; the next emoji starts a new part.
    const text = `${'😀'.repeat(33)}x${'😀'.repeat(20)}`
    const { encoding, parts } = splitSms(text)
    expect(encoding).toBe('ucs2')
    expect(parts[0]).toBe(`${'😀'.repeat(33)}x`)
    expect(parts.join('')).toBe(text)
    const odd = splitSms('x' + '😀'.repeat(40)).parts
    expect(odd[0]).toBe(`x${'😀'.repeat(33)}`)
    expect(odd.every((p) => !/[\uD800-\uDBFF]$/.test(p))).toBe(true)
  })
})

describe('encodeSms', () => {
  it('encodes a single GSM-7 message as unpacked septets without UDH', () => {
    const sms = encodeSms('Hi @ {x}')
    expect(sms).toMatchObject({ encoding: 'gsm7', dataCoding: 0, udh: false })
    expect([...partOf(sms, 0)]).toEqual([0x48, 0x69, 0x20, 0x00, 0x20, 0x1b, 0x28, 0x78, 0x1b, 0x29])
    expect(decodeSmsPart('gsm7', partOf(sms, 0))).toBe('Hi @ {x}')
  })

  it('prefixes each part of a long message with a concatenation UDH', () => {
    const text = 'd'.repeat(200)
    const sms = encodeSms(text, 0x2a)
    expect(sms.udh).toBe(true)
    expect(sms.parts).toHaveLength(2)
    expect([...partOf(sms, 0).subarray(0, 6)]).toEqual([5, 0, 3, 0x2a, 2, 1])
    expect([...partOf(sms, 1).subarray(0, 6)]).toEqual([5, 0, 3, 0x2a, 2, 2])
    expect(sms.parts.map((p) => p.length - 6)).toEqual([153, 47])
    expect(sms.parts.map((p) => decodeSmsPart('gsm7', p.subarray(6))).join('')).toBe(text)
  })

  it('encodes UCS-2 big-endian with data_coding 8', () => {
    const sms = encodeSms('Жç')
    expect(sms).toMatchObject({ encoding: 'ucs2', dataCoding: 8, udh: false })
    expect([...partOf(sms, 0)]).toEqual([0x04, 0x16, 0x00, 0xe7])
    const long = encodeSms('ж'.repeat(100), 7)
    expect(long.parts.map((p) => p.length)).toEqual([6 + 134, 6 + 66])
    expect(long.parts.map((p) => decodeSmsPart('ucs2', p.subarray(6))).join('')).toBe('ж'.repeat(100))
  })
})
