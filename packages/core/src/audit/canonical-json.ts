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

const write = (value: unknown, path: string, ancestors: Set<object>, out: string[]): void => {
  switch (typeof value) {
    case 'string':
      out.push(JSON.stringify(value))
      return
    case 'boolean':
      out.push(value ? 'true' : 'false')
      return
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(path, 'non-finite number')
      out.push(JSON.stringify(value))
      return
    case 'object': {
      if (value === null) {
        out.push('null')
        return
      }
      if (ancestors.has(value)) throw new CanonicalJsonError(path, 'cycle')
      ancestors.add(value)
      if (Array.isArray(value)) {
        out.push('[')
        value.forEach((item, index) => {
          if (index > 0) out.push(',')
          if (item === undefined) throw new CanonicalJsonError(`${path}[${index}]`, 'undefined in an array')
          write(item, `${path}[${index}]`, ancestors, out)
        })
        out.push(']')
      } else {
        if (!isPlainObject(value)) throw new CanonicalJsonError(path, 'not a plain object')
        const record = value as Record<string, unknown>
        const keys = Object.keys(record)
          .filter((k) => record[k] !== undefined)
          .sort(compareCodeUnits)
        out.push('{')
        keys.forEach((key, index) => {
          if (index > 0) out.push(',')
          out.push(JSON.stringify(key), ':')
          write(record[key], `${path}.${key}`, ancestors, out)
        })
        out.push('}')
      }
      ancestors.delete(value)
      return
    }
    default:
      throw new CanonicalJsonError(path, `${typeof value} is not JSON`)
  }
}

export const canonicalJson = (value: unknown): string => {
  if (value === undefined) throw new CanonicalJsonError('$', 'undefined is not JSON')
  const out: string[] = []
  write(value, '$', new Set(), out)
  return out.join('')
}
