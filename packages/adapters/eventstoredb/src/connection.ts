import { EventStoreDBClient } from '@eventstore/db-client'

/**
 * The connection string comes from `EVENTSTORE_CONNECTION_STRING`, in the client's own format:
 * `esdb://host:2113?tls=false` for one node, `esdb+discover://host:2113` (DNS / gossip discovery)
 * or `esdb://n1:2113,n2:2113,n3:2113` for a cluster, with `tls`, `tlsVerifyCert`, `tlsCAFile`,
 * `nodePreference`, `defaultDeadline` and credentials (`esdb://user:pass@host`) as query options.
 */
export const CONNECTION_STRING_VARIABLE = 'EVENTSTORE_CONNECTION_STRING'

const SCHEMES = ['esdb://', 'esdb+discover://']

/** The configured connection string, or null when none is set. Throws on a malformed value. */
export const connectionStringFromEnv = (env: Readonly<Record<string, string | undefined>> = process.env) => {
  const value = env[CONNECTION_STRING_VARIABLE]?.trim()
  if (value === undefined || value === '') return null
  if (!SCHEMES.some((scheme) => value.startsWith(scheme))) {
    // The value may hold credentials: name the rule, not the value.
    throw new Error(`${CONNECTION_STRING_VARIABLE} must start with esdb:// or esdb+discover://`)
  }
  return value
}

/**
 * A client for a connection string. The client's parse errors quote the offending part of the
 * string, which may be a password: the quoted text is removed from the message.
 */
export const clientFromConnectionString = (connectionString: string): EventStoreDBClient => {
  try {
    return EventStoreDBClient.connectionString(connectionString)
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/"[^"]*"/g, '(value)') : 'unparseable'
    throw new Error(`invalid EventStoreDB connection string: ${reason}`)
  }
}
