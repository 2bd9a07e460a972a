/**
 * Canonical JSON: object keys sorted by UTF-16 code units, no whitespace, numbers and strings as
 * `JSON.stringify` writes them (the ECMAScript shortest round-trip form, as in RFC 8785). Two
 * values that a JSON store would hold identically serialise to the same string, whatever their
 * key order, which is what makes hashes over stored events reproducible.
 *
 * Object properties whose value is `undefined` are omitted, as a JSON store omits them. Any other
 * value that JSON cannot hold (functions, symbols, bigints, non-finite numbers, `undefined` in an
 * array, class instances such as `Date` or `Map`, cycles) is rejected with a
 * `CanonicalJsonError` that names the path, never the value.
 */
export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError'
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`not canonical JSON at ${path}: ${reason}`)
  }
}

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const compareCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** The path of the value being written, kept as parts and only spelled out for an error. */
type PathParts = (string | number)[]
const spell = (parts: PathParts): string =>
  parts.reduce<string>((p, part) => (typeof part === 'number' ? `${p}[${part}]` : `${p}.${part}`), '$')

/**
 * Appends `value` to `out`. Written for the hash chain's hot path (every appended event is
 * serialised once): one string is built by concatenation, and the path of a value is only spelled
 * out when it is rejected.
 */
const write = (value: unknown, path: PathParts, ancestors: object[], out: { s: string }): void => {
  switch (typeof value) {
    case 'string':
      out.s += JSON.stringify(value)
      return
    case 'boolean':
      out.s += value ? 'true' : 'false'
      return
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(spell(path), 'non-finite number')
      out.s += JSON.stringify(value)
      return
    case 'object': {
      if (value === null) {
        out.s += 'null'
        return
      }
      if (ancestors.includes(value)) throw new CanonicalJsonError(spell(path), 'cycle')
      ancestors.push(value)
      if (Array.isArray(value)) {
        out.s += '['
        for (let index = 0; index < value.length; index++) {
          if (index > 0) out.s += ','
          const item: unknown = value[index]
          path.push(index)
          if (item === undefined) throw new CanonicalJsonError(spell(path), 'undefined in an array')
          write(item, path, ancestors, out)
          path.pop()
        }
        out.s += ']'
      } else {
        if (!isPlainObject(value)) throw new CanonicalJsonError(spell(path), 'not a plain object')
        const record = value as Record<string, unknown>
        const keys = Object.keys(record).sort(compareCodeUnits)
        out.s += '{'
        let first = true
        for (const key of keys) {
          const item = record[key]
          if (item === undefined) continue
          if (!first) out.s += ','
          first = false
          out.s += `${JSON.stringify(key)}:`
          path.push(key)
          write(item, path, ancestors, out)
          path.pop()
        }
        out.s += '}'
      }
      ancestors.pop()
      return
    }
    default:
      throw new CanonicalJsonError(spell(path), `${typeof value} is not JSON`)
  }
}

export const canonicalJson = (value: unknown): string => {
  if (value === undefined) throw new CanonicalJsonError('$', 'undefined is not JSON')
  const out = { s: '' }
  write(value, [], [], out)
  return out.s
}
