import { describe, expect, it } from 'vitest'
import {
  CONNECTION_STRING_VARIABLE,
  clientFromConnectionString,
  connectionStringFromEnv,
} from './connection.js'

describe('connectionStringFromEnv', () => {
  it('reads EVENTSTORE_CONNECTION_STRING for single nodes and clusters', () => {
    expect(CONNECTION_STRING_VARIABLE).toBe('EVENTSTORE_CONNECTION_STRING')
    expect(
      connectionStringFromEnv({ EVENTSTORE_CONNECTION_STRING: ' esdb://localhost:2113?tls=false ' }),
    ).toBe('esdb://localhost:2113?tls=false')
    const cluster = 'esdb+discover://admin:changeit@cluster.example.internal:2113?tlsCAFile=/etc/esdb/ca.crt'
    expect(connectionStringFromEnv({ EVENTSTORE_CONNECTION_STRING: cluster })).toBe(cluster)
  })

  it('returns null when unset or blank', () => {
    expect(connectionStringFromEnv({})).toBeNull()
    expect(connectionStringFromEnv({ EVENTSTORE_CONNECTION_STRING: '  ' })).toBeNull()
  })

  it('rejects other schemes without echoing the value (it may hold a password)', () => {
    expect(() =>
      connectionStringFromEnv({ EVENTSTORE_CONNECTION_STRING: 'tcp://admin:s3cret@host:1113' }),
    ).toThrow(/must start with esdb:\/\//)
    try {
      connectionStringFromEnv({ EVENTSTORE_CONNECTION_STRING: 'tcp://admin:s3cret@host:1113' })
    } catch (e) {
      expect(String(e)).not.toContain('s3cret')
    }
  })
})

describe('clientFromConnectionString', () => {
  it('creates a client without connecting', async () => {
    const client = clientFromConnectionString('esdb://localhost:2113?tls=false')
    expect(typeof client.appendToStream).toBe('function')
    await client.dispose()
  })

  it('reports parse errors without the quoted part of the string', () => {
    expect(() => clientFromConnectionString('esdb://admin:s3cret@host:2113?tls=s3cret')).toThrow(
      'invalid EventStoreDB connection string: Unexpected (value) at position 34, expected true or false.',
    )
  })
})
