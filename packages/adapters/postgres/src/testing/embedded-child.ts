// Child process for embedded.int.test.ts: starts an embedded server in the given directory, prints
// its port, then waits to be killed (SIGKILL leaves the server running without a parent).
import { startEmbeddedPostgres } from '../embedded.js'

const dataDir = process.argv[2]
if (dataDir === undefined) throw new Error('usage: embedded-child <dataDir>')
const server = await startEmbeddedPostgres({ dataDir, settings: { fsync: 'off' } })
process.stdout.write(`ready ${server.port}\n`)
setInterval(() => undefined, 60_000)
