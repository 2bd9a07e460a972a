/**
 * SMS text encoding, pure. GSM 03.38 (GSM-7) when every character is in the default alphabet or
 * its extension table (extension characters `^{}\[~]|€` and form feed take two septets: escape +
 * code), else UCS-2. One message holds 160 septets (GSM-7) or 70 UTF-16 code units (UCS-2); a
 * longer text is split into parts of 153 septets / 67 code units, leaving room for the 6-byte
 * concatenation header (UDH `05 00 03 <ref> <total> <seq>`). An escape pair and a surrogate pair
 * are never split across parts.
 */
const GSM7_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà'
const GSM7_EXTENSION: Readonly<Record<string, number>> = {
  '\f': 0x0a,
  '^': 0x14,
  '{': 0x28,
  '}': 0x29,
  '\\': 0x2f,
  '[': 0x3c,
  '~': 0x3d,
  ']': 0x3e,
  '|': 0x40,
  '€': 0x65,
}
const ESC = 0x1b
const BASIC_CODE: ReadonlyMap<string, number> = new Map(
  [...GSM7_BASIC].flatMap((c, i) => (i === ESC ? [] : [[c, i] as const])),
)

export type SmsEncoding = 'gsm7' | 'ucs2'

/** GSM-7 septets of one character, or null when it is not in the GSM-7 alphabet. */
const septetsOf = (c: string): readonly number[] | null => {
  const basic = BASIC_CODE.get(c)
  if (basic !== undefined) return [basic]
  const ext = GSM7_EXTENSION[c]
  return ext === undefined ? null : [ESC, ext]
}

export const isGsm7 = (text: string): boolean => [...text].every((c) => septetsOf(c) !== null)

export const SMS_LIMITS = {
  gsm7: { single: 160, part: 153 },
  ucs2: { single: 70, part: 67 },
} as const

/** Splits a text into the parts it is sent as (one part when it fits a single message). */
export const splitSms = (
  text: string,
): { readonly encoding: SmsEncoding; readonly parts: readonly string[] } => {
  const encoding: SmsEncoding = isGsm7(text) ? 'gsm7' : 'ucs2'
  // Each character's size: septets for GSM-7, UTF-16 code units for UCS-2 (2 for astral).
  const chars = [...text]
  const size = (c: string) => (encoding === 'gsm7' ? (septetsOf(c)?.length ?? 0) : c.length)
  const total = chars.reduce((n, c) => n + size(c), 0)
  const limits = SMS_LIMITS[encoding]
  if (total <= limits.single) return { encoding, parts: [text] }
  const parts: string[] = []
  let current = ''
  let used = 0
  for (const c of chars) {
    const s = size(c)
    if (used + s > limits.part) {
      parts.push(current)
      current = ''
      used = 0
    }
    current += c
    used += s
  }
  if (current !== '') parts.push(current)
  return { encoding, parts }
}

/** SMPP `data_coding`: 0x00 SMSC default alphabet (GSM-7), 0x08 UCS-2. */
export const DATA_CODING: Readonly<Record<SmsEncoding, number>> = { gsm7: 0x00, ucs2: 0x08 }

const encodePart = (encoding: SmsEncoding, part: string): Buffer =>
  encoding === 'gsm7'
    ? Buffer.from([...part].flatMap((c) => septetsOf(c) ?? []))
    : Buffer.from(part, 'utf16le').swap16()

export interface EncodedSms {
  readonly encoding: SmsEncoding
  readonly dataCoding: number
  /** `short_message` bytes of each part (unpacked septets for GSM-7, UCS-2 big-endian), UDH first when split. */
  readonly parts: readonly Buffer[]
  /** Whether the parts carry a UDH (set `esm_class` UDHI, 0x40). */
  readonly udh: boolean
}

/**
 * Encodes a text as SMPP `short_message` payloads. `reference` (0–255) is the concatenation
 * reference shared by the parts of one message.
 */
export const encodeSms = (text: string, reference = 0): EncodedSms => {
  const { encoding, parts } = splitSms(text)
  const encoded = parts.map((p) => encodePart(encoding, p))
  if (encoded.length === 1) return { encoding, dataCoding: DATA_CODING[encoding], parts: encoded, udh: false }
  if (encoded.length > 255) throw new Error('sms: text needs more than 255 parts')
  const ref = reference & 0xff
  return {
    encoding,
    dataCoding: DATA_CODING[encoding],
    udh: true,
    parts: encoded.map((body, i) =>
      Buffer.concat([Buffer.from([0x05, 0x00, 0x03, ref, encoded.length, i + 1]), body]),
    ),
  }
}

/** Decodes one part's payload (without UDH) back to text; for tests and receipts. */
export const decodeSmsPart = (encoding: SmsEncoding, body: Buffer): string => {
  if (encoding === 'ucs2') return Buffer.from(body).swap16().toString('utf16le')
  let out = ''
  for (let i = 0; i < body.length; i++) {
    const b = body[i] ?? 0
    if (b === ESC) {
      const next = body[++i]
      const ext = Object.entries(GSM7_EXTENSION).find(([, code]) => code === next)
      out += ext?.[0] ?? ' '
    } else out += GSM7_BASIC[b] ?? '?'
  }
  return out
}
