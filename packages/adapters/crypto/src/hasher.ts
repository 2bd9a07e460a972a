import { createHash } from 'node:crypto'
import type { Hasher } from '@referrals/core'

/** The `Hasher` port for the audit hash chain: SHA-256 over UTF-8, lowercase hex. */
export const sha256Hasher: Hasher = {
  sha256Hex: (input) => createHash('sha256').update(input, 'utf8').digest('hex'),
}
