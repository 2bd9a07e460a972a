import { createHash } from 'node:crypto'

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** EventStoreDB event ids are UUIDs (any version, either case). */
export const isUuid = (value: string): boolean => UUID_PATTERN.test(value)

/** The form EventStoreDB returns on read: lower case. Ids are compared in this form. */
export const canonicalUuid = (value: string): string => value.toLowerCase()

/**
 * Name-based UUID, version 5 (RFC 9562 §5.5): SHA-1 over the namespace's 16 bytes and the name's
 * UTF-8 bytes, with the version and variant bits set. The same (namespace, name) always gives the
 * same id, which is what makes a repeated follow-up append recognisable as a repeat.
 */
export const uuidV5 = (namespace: string, name: string): string => {
  if (!isUuid(namespace)) throw new TypeError('uuidV5: namespace must be a UUID')
  const bytes = createHash('sha1')
    .update(Buffer.from(namespace.replace(/-/g, ''), 'hex'))
    .update(name, 'utf8')
    .digest()
    .subarray(0, 16)
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x50
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
