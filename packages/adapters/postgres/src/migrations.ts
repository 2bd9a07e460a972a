import type pg from 'pg'
import { type CheckedOutClient, checkout, PostgresStoreError, toStoreError } from './errors.js'
import { durationsFillSql } from './referral-facts-durations.js'
import { ROLLUP_KEY_COLUMNS, rollupFillSql } from './referral-facts-rollup.js'

/** A schema name safe to splice into SQL once quoted: lower-case identifier, at most 63 bytes. */
const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/

export const DEFAULT_SCHEMA = 'referrals'

export const quoteSchema = (schema: string): string => {
  if (!SCHEMA_PATTERN.test(schema)) {
    throw new PostgresStoreError({
      _tag: 'InvalidAppend',
      message: 'schema name must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)',
    })
  }
  return `"${schema}"`
}

/**
 * Bits of a global position below the transaction id: a position is
 * `transaction_id * 2^POSITION_TX_SHIFT + ordinal within the transaction`, so one transaction holds
 * at most 65,536 events. See the ordering proof in `event-store.ts`.
 */
export const POSITION_TX_SHIFT = 16
export const MAX_EVENTS_PER_TRANSACTION = 2 ** POSITION_TX_SHIFT

interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: (s: string) => string
}

/**
 * Versioned, append-only list: a deployed migration is never edited, a change is a new entry.
 * Each runs in the transaction that holds the migration lock, so a failure leaves nothing behind.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events, streams, checkpoints, append function',
    sql: (s) => `
CREATE TABLE ${s}.streams (
  stream_id text PRIMARY KEY,
  version integer NOT NULL CHECK (version >= 0)
);

CREATE TABLE ${s}.events (
  global_position bigint PRIMARY KEY CHECK (global_position > 0),
  transaction_id xid8 NOT NULL,
  stream_id text NOT NULL,
  version integer NOT NULL CHECK (version >= 1),
  event_id text NOT NULL,
  type text NOT NULL,
  schema_version integer NOT NULL,
  data json NOT NULL,
  metadata json NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
  CONSTRAINT events_event_id_key UNIQUE (event_id)
);

CREATE TABLE ${s}.checkpoints (
  subscription_id text PRIMARY KEY,
  position bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ${s}.projection_checkpoints (
  name text PRIMARY KEY,
  position bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Locks streams for a multi-stream append, in the caller's (sorted) order, before the transaction
-- has an id: see append_events.
CREATE FUNCTION ${s}.lock_streams(p_stream_ids text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  v_id text;
BEGIN
  FOREACH v_id IN ARRAY p_stream_ids LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended(v_id, 0));
  END LOOP;
END
$fn$;

-- One call = one round trip. Returns status 'ok' | 'idempotent' | 'mismatch' | 'conflict' | 'too_many'.
-- The stream lock serialises appends to one stream; the expected version is checked under it.
CREATE FUNCTION ${s}.append_events(p_stream_id text, p_expected_kind text, p_expected_version integer, p_events json)
RETURNS TABLE (status text, stream_version integer, last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_xid xid8;
  v_count integer := json_array_length(p_events);
  v_ids text[];
  v_current integer;
  v_in_stream integer;
  v_anywhere integer;
  v_version integer;
  v_position bigint;
  v_ordinal integer;
  v_base bigint;
BEGIN
  -- Stream lock first, transaction id second. Positions derive from the transaction id, so a
  -- transaction that appends to a stream after another one committed there gets a larger id, and
  -- every stream's events appear in version order in the global order. (A transaction-scoped
  -- advisory lock does not assign a transaction id; a row lock would.)
  PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));
  v_xid := pg_current_xact_id();
  SELECT array_agg(e->>'id') INTO v_ids FROM json_array_elements(p_events) AS e;

  INSERT INTO ${s}.streams (stream_id, version) VALUES (p_stream_id, 0) ON CONFLICT (stream_id) DO NOTHING;
  SELECT st.version INTO v_current FROM ${s}.streams st WHERE st.stream_id = p_stream_id FOR UPDATE;

  SELECT count(*) FILTER (WHERE ev.stream_id = p_stream_id), count(*),
         max(ev.version) FILTER (WHERE ev.stream_id = p_stream_id),
         max(ev.global_position) FILTER (WHERE ev.stream_id = p_stream_id)
    INTO v_in_stream, v_anywhere, v_version, v_position
    FROM ${s}.events ev WHERE ev.event_id = ANY (v_ids);
  IF v_in_stream = v_count AND v_count > 0 THEN
    RETURN QUERY SELECT 'idempotent'::text, v_version, v_position;
    RETURN;
  END IF;
  IF v_anywhere > 0 THEN
    RETURN QUERY SELECT 'mismatch'::text, v_current, NULL::bigint;
    RETURN;
  END IF;

  IF (p_expected_kind = 'no_stream' AND v_current <> 0)
     OR (p_expected_kind = 'stream_exists' AND v_current = 0)
     OR (p_expected_kind = 'exact' AND v_current <> p_expected_version) THEN
    RETURN QUERY SELECT 'conflict'::text, v_current, NULL::bigint;
    RETURN;
  END IF;

  -- A caller whose transaction already had an id when it got the stream lock (it wrote before
  -- calling) could be older than the stream's last writer; placing its events would break the
  -- stream's order, so it must retry with a new transaction.
  IF v_current > 0 AND EXISTS (SELECT 1 FROM ${s}.events ev
       WHERE ev.stream_id = p_stream_id AND ev.version = v_current AND ev.transaction_id > v_xid) THEN
    RAISE EXCEPTION 'append to a stream from a transaction older than its last writer; retry'
      USING ERRCODE = '40001';
  END IF;

  v_ordinal := coalesce(nullif(current_setting('referrals.tx_ordinal', true), '')::integer, 0);
  IF v_ordinal + v_count > ${MAX_EVENTS_PER_TRANSACTION} THEN
    RETURN QUERY SELECT 'too_many'::text, v_current, NULL::bigint;
    RETURN;
  END IF;
  PERFORM set_config('referrals.tx_ordinal', (v_ordinal + v_count)::text, true);
  v_base := (v_xid::text::bigint << ${POSITION_TX_SHIFT}) + v_ordinal;

  INSERT INTO ${s}.events (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
  SELECT v_base + e.n - 1, v_xid, p_stream_id, v_current + e.n::integer, e.v->>'id', e.v->>'type',
         (e.v->>'schemaVersion')::integer, e.v->'data', e.v->'metadata'
    FROM json_array_elements(p_events) WITH ORDINALITY AS e(v, n);
  UPDATE ${s}.streams SET version = v_current + v_count WHERE stream_id = p_stream_id;

  RETURN QUERY SELECT 'ok'::text, v_current + v_count, v_base + v_count - 1;
END
$fn$;
`,
  },
  {
    version: 2,
    name: 'append without the streams table: version and last writer from the events index',
    // What an append wrote besides its events: an upsert of the `streams` row, a `FOR UPDATE` lock
    // on it (a WAL record) and an update (another one), plus a second index probe for the
    // last-writer check. The per-stream advisory lock already serialises appends to one stream, and
    // the unique (stream_id, version) index already holds each stream's version, so one backward
    // probe of that index gives both the current version and the last writer's transaction id, and
    // the append writes only the events. `streams` becomes a view over the events (old readers keep
    // working); an INSERT into it is ignored, as the rows it would hold are derived.
    sql: (s) => `
DROP TABLE ${s}.streams;
CREATE VIEW ${s}.streams AS
  SELECT stream_id, max(version) AS version FROM ${s}.events GROUP BY stream_id;
CREATE RULE streams_derived AS ON INSERT TO ${s}.streams DO INSTEAD NOTHING;

CREATE OR REPLACE FUNCTION ${s}.append_events(p_stream_id text, p_expected_kind text, p_expected_version integer, p_events json)
RETURNS TABLE (status text, stream_version integer, last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_xid xid8;
  v_count integer := json_array_length(p_events);
  v_current integer;
  v_last_writer xid8;
  v_in_stream integer;
  v_anywhere integer;
  v_version integer;
  v_position bigint;
  v_ordinal integer;
  v_base bigint;
BEGIN
  -- Stream lock first, transaction id second (see migration 1 and the README): a transaction that
  -- appends to a stream after another one committed there gets a larger id. Under READ COMMITTED
  -- every statement below takes a new snapshot, so it sees what the lock's previous holder
  -- committed; under a stale snapshot the unique (stream_id, version) index refuses the insert
  -- (23505, retried by the client).
  PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));
  v_xid := pg_current_xact_id();

  SELECT ev.version, ev.transaction_id INTO v_current, v_last_writer
    FROM ${s}.events ev WHERE ev.stream_id = p_stream_id ORDER BY ev.version DESC LIMIT 1;
  v_current := coalesce(v_current, 0);

  SELECT count(*) FILTER (WHERE ev.stream_id = p_stream_id), count(*),
         max(ev.version) FILTER (WHERE ev.stream_id = p_stream_id),
         max(ev.global_position) FILTER (WHERE ev.stream_id = p_stream_id)
    INTO v_in_stream, v_anywhere, v_version, v_position
    FROM ${s}.events ev
   WHERE ev.event_id = ANY (ARRAY(SELECT e->>'id' FROM json_array_elements(p_events) AS e));
  IF v_in_stream = v_count AND v_count > 0 THEN
    RETURN QUERY SELECT 'idempotent'::text, v_version, v_position;
    RETURN;
  END IF;
  IF v_anywhere > 0 THEN
    RETURN QUERY SELECT 'mismatch'::text, v_current, NULL::bigint;
    RETURN;
  END IF;

  IF (p_expected_kind = 'no_stream' AND v_current <> 0)
     OR (p_expected_kind = 'stream_exists' AND v_current = 0)
     OR (p_expected_kind = 'exact' AND v_current <> p_expected_version) THEN
    RETURN QUERY SELECT 'conflict'::text, v_current, NULL::bigint;
    RETURN;
  END IF;

  -- A caller whose transaction already had an id when it got the stream lock could be older than
  -- the stream's last writer; placing its events would break the stream's order: retry.
  IF v_last_writer > v_xid THEN
    RAISE EXCEPTION 'append to a stream from a transaction older than its last writer; retry'
      USING ERRCODE = '40001';
  END IF;

  v_ordinal := coalesce(nullif(current_setting('referrals.tx_ordinal', true), '')::integer, 0);
  IF v_ordinal + v_count > ${MAX_EVENTS_PER_TRANSACTION} THEN
    RETURN QUERY SELECT 'too_many'::text, v_current, NULL::bigint;
    RETURN;
  END IF;
  PERFORM set_config('referrals.tx_ordinal', (v_ordinal + v_count)::text, true);
  v_base := (v_xid::text::bigint << ${POSITION_TX_SHIFT}) + v_ordinal;

  INSERT INTO ${s}.events (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
  SELECT v_base + e.n - 1, v_xid, p_stream_id, v_current + e.n::integer, e.v->>'id', e.v->>'type',
         (e.v->>'schemaVersion')::integer, e.v->'data', e.v->'metadata'
    FROM json_array_elements(p_events) WITH ORDINALITY AS e(v, n);

  RETURN QUERY SELECT 'ok'::text, v_current + v_count, v_base + v_count - 1;
END
$fn$;

-- A multi-stream append in one statement (one round trip instead of BEGIN, lock_streams, one call
-- per stream and COMMIT). The caller passes the requests sorted by stream id: every stream lock is
-- taken first, in that order, before the transaction has an id. The first request that is not
-- 'ok' or 'idempotent' raises SQLSTATE RA001 with "<1-based index> <status> <stream version>", which
-- rolls the whole statement back: all or nothing.
CREATE FUNCTION ${s}.append_many(p_stream_ids text[], p_expected_kinds text[], p_expected_versions integer[], p_events json[])
RETURNS TABLE (status text, stream_version integer, last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_row record;
BEGIN
  PERFORM ${s}.lock_streams(p_stream_ids);
  FOR v_i IN 1 .. coalesce(array_length(p_stream_ids, 1), 0) LOOP
    SELECT a.status AS s, a.stream_version AS v, a.last_position AS p INTO v_row
      FROM ${s}.append_events(p_stream_ids[v_i], p_expected_kinds[v_i], p_expected_versions[v_i], p_events[v_i]) AS a;
    IF v_row.s NOT IN ('ok', 'idempotent') THEN
      RAISE EXCEPTION USING ERRCODE = 'RA001', MESSAGE = format('%s %s %s', v_i, v_row.s, v_row.v);
    END IF;
    status := v_row.s;
    stream_version := v_row.v;
    last_position := v_row.p;
    RETURN NEXT;
  END LOOP;
END
$fn$;
`,
  },
  {
    version: 3,
    name: 'referral_facts read model of the reports',
    // One row per referral, kept by the `referral_facts_v1` projection (referral-facts.ts) and
    // truncated by its rebuild. No patient column: the row is built from the non-PHI event fields
    // only. Instants are stored as the events' ISO-8601 text (UTC, milliseconds), which sorts and
    // compares like the in-memory model's strings.
    sql: (s) => `
CREATE TABLE ${s}.referral_facts (
  referral_id text PRIMARY KEY,
  sender_practice_id text NOT NULL,
  receiving_practice_id text,
  region_id text NOT NULL,
  specialty_id text NOT NULL,
  category_id text NOT NULL,
  subcategory_id text,
  urgency text NOT NULL,
  route text NOT NULL,
  status text NOT NULL,
  sent_at text NOT NULL,
  first_delivered_at text,
  delivered_at text,
  accepted_at text,
  scheduled_at text,
  appointment_at text,
  completed_at text,
  cancelled_at text,
  returned_at text,
  return_reason text,
  unassigned_since text,
  delivery_count integer NOT NULL,
  decline_count integer NOT NULL,
  expiry_count integer NOT NULL,
  no_show_count integer NOT NULL,
  channel text,
  campaign text,
  location text,
  service_line text,
  referring_practice_id text,
  updated_at text NOT NULL
);
CREATE INDEX referral_facts_sent ON ${s}.referral_facts (sent_at COLLATE "C", referral_id COLLATE "C");
CREATE INDEX referral_facts_sender ON ${s}.referral_facts (sender_practice_id, sent_at COLLATE "C");
CREATE INDEX referral_facts_receiver ON ${s}.referral_facts (receiving_practice_id, sent_at COLLATE "C");
`,
  },
  {
    version: 4,
    name: 'referral_facts: instants as epoch milliseconds for the reports in SQL',
    // The reports aggregate durations in SQL (referral-facts-report.ts); parsing the ISO text of
    // every row's instants on each request cost more than the rest of the query. These stored
    // generated columns hold them as epoch milliseconds, computed once when a row is written (and,
    // by this ALTER, for the rows already there). `instant_ms` is declared IMMUTABLE, which a
    // generated column needs: it is for the ISO-8601 UTC instants (`…Z`) the projection writes,
    // whose value depends on neither TimeZone nor DateStyle. For millisecond instants it equals
    // the core's `millisOf` exactly (`date_part` is within 10⁻³ ms; `floor(… + 0.0005)`).
    sql: (s) => `
CREATE FUNCTION ${s}.instant_ms(p_instant text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN floor(date_part('epoch', p_instant::timestamptz) * 1000 + 0.0005)::bigint;
ALTER TABLE ${s}.referral_facts
  ADD COLUMN sent_at_ms bigint GENERATED ALWAYS AS (${s}.instant_ms(sent_at)) STORED,
  ADD COLUMN accepted_at_ms bigint GENERATED ALWAYS AS (${s}.instant_ms(accepted_at)) STORED,
  ADD COLUMN scheduled_at_ms bigint GENERATED ALWAYS AS (${s}.instant_ms(scheduled_at)) STORED,
  ADD COLUMN appointment_at_ms bigint GENERATED ALWAYS AS (${s}.instant_ms(appointment_at)) STORED,
  ADD COLUMN completed_at_ms bigint GENERATED ALWAYS AS (${s}.instant_ms(completed_at)) STORED,
  ADD COLUMN unassigned_since_ms bigint GENERATED ALWAYS AS (${s}.instant_ms(unassigned_since)) STORED;
`,
  },
  {
    version: 5,
    name: 'events by stream category and position: prefix reads skip the other categories',
    // A catch-up reads "events of streams starting with `practice-` after position p". Through the
    // primary key that walks every event after p — every referral and pool event written since the
    // last practice change — only to filter them out, so a directory refresh (two per send) grew
    // with the history. This index keeps each category's events (the stream id up to its first
    // '-') in global order, and `readAll` with category prefixes (`practice-`, `referral-`, …)
    // reads one ordered range per prefix (`categoryPrefixSql` in event-store.ts).
    sql: (s) => `
CREATE INDEX events_category_position ON ${s}.events ((split_part(stream_id, '-', 1)), global_position);
`,
  },
  {
    version: 6,
    name: 'referral_facts_monthly: the funnel counts per month and dimensions, for the reports',
    // Kept by the referral-facts projection in the same transaction as the facts rows (no trigger;
    // referral-facts-rollup.ts). Filled here from the rows already there. NULLS NOT DISTINCT: a
    // null dimension (no subcategory, no campaign, unassigned) is one key, as in the reports.
    // The partial index serves the funnel's backlog (its unassigned rows of the covered months).
    sql: (s) => `
CREATE TABLE ${s}.referral_facts_monthly (
  month text NOT NULL,
  sender_practice_id text NOT NULL,
  receiving_practice_id text,
  region_id text NOT NULL,
  specialty_id text NOT NULL,
  category_id text NOT NULL,
  subcategory_id text,
  urgency text NOT NULL,
  route text NOT NULL,
  channel text,
  campaign text,
  location text,
  service_line text,
  referring_practice_id text,
  n integer NOT NULL,
  delivered integer NOT NULL,
  accepted integer NOT NULL,
  scheduled integer NOT NULL,
  completed integer NOT NULL,
  deliveries bigint NOT NULL,
  declines bigint NOT NULL,
  expiries bigint NOT NULL,
  no_shows bigint NOT NULL,
  cancelled_before_accept integer NOT NULL,
  cancelled_after_accept integer NOT NULL,
  cancelled_after_schedule integer NOT NULL,
  returned integer NOT NULL,
  unassigned integer NOT NULL
);
CREATE UNIQUE INDEX referral_facts_monthly_key ON ${s}.referral_facts_monthly
  (${ROLLUP_KEY_COLUMNS.join(', ')}) NULLS NOT DISTINCT;
CREATE INDEX referral_facts_unassigned ON ${s}.referral_facts (sent_at COLLATE "C") WHERE status = 'unassigned';
${rollupFillSql(`${s}.referral_facts`, `${s}.referral_facts_monthly`)};
`,
  },
  {
    version: 7,
    name: "append_events reads each event's JSON once",
    // The events arrive as one json array. The insert took id, type, schemaVersion, data and
    // metadata with five `->` operators per event, and the idempotency probe the id with another:
    // on the `json` type each operator parses the event's text again from its start, and an event
    // with sealed PHI and a hash-chained envelope is kilobytes. `json_to_recordset` parses the array
    // once and yields every field (the nested data and metadata as their exact text, as `->` did),
    // so the insert parses each event once and the probe once. Same signature, results and stored
    // rows; nothing else changes (append_many calls this function per stream).
    sql: (s) => `
CREATE OR REPLACE FUNCTION ${s}.append_events(p_stream_id text, p_expected_kind text, p_expected_version integer, p_events json)
RETURNS TABLE (status text, stream_version integer, last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_xid xid8;
  v_count integer := json_array_length(p_events);
  v_current integer;
  v_last_writer xid8;
  v_in_stream integer;
  v_anywhere integer;
  v_version integer;
  v_position bigint;
  v_ordinal integer;
  v_base bigint;
BEGIN
  -- Stream lock first, transaction id second (see migration 1 and the README): a transaction that
  -- appends to a stream after another one committed there gets a larger id. Under READ COMMITTED
  -- every statement below takes a new snapshot, so it sees what the lock's previous holder
  -- committed; under a stale snapshot the unique (stream_id, version) index refuses the insert
  -- (23505, retried by the client).
  PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));
  v_xid := pg_current_xact_id();

  SELECT ev.version, ev.transaction_id INTO v_current, v_last_writer
    FROM ${s}.events ev WHERE ev.stream_id = p_stream_id ORDER BY ev.version DESC LIMIT 1;
  v_current := coalesce(v_current, 0);

  SELECT count(*) FILTER (WHERE ev.stream_id = p_stream_id), count(*),
         max(ev.version) FILTER (WHERE ev.stream_id = p_stream_id),
         max(ev.global_position) FILTER (WHERE ev.stream_id = p_stream_id)
    INTO v_in_stream, v_anywhere, v_version, v_position
    FROM ${s}.events ev
   WHERE ev.event_id = ANY (ARRAY(SELECT x.id FROM json_to_recordset(p_events) AS x(id text)));
  IF v_in_stream = v_count AND v_count > 0 THEN
    RETURN QUERY SELECT 'idempotent'::text, v_version, v_position;
    RETURN;
  END IF;
  IF v_anywhere > 0 THEN
    RETURN QUERY SELECT 'mismatch'::text, v_current, NULL::bigint;
    RETURN;
  END IF;

  IF (p_expected_kind = 'no_stream' AND v_current <> 0)
     OR (p_expected_kind = 'stream_exists' AND v_current = 0)
     OR (p_expected_kind = 'exact' AND v_current <> p_expected_version) THEN
    RETURN QUERY SELECT 'conflict'::text, v_current, NULL::bigint;
    RETURN;
  END IF;

  -- A caller whose transaction already had an id when it got the stream lock could be older than
  -- the stream's last writer; placing its events would break the stream's order: retry.
  IF v_last_writer > v_xid THEN
    RAISE EXCEPTION 'append to a stream from a transaction older than its last writer; retry'
      USING ERRCODE = '40001';
  END IF;

  v_ordinal := coalesce(nullif(current_setting('referrals.tx_ordinal', true), '')::integer, 0);
  IF v_ordinal + v_count > ${MAX_EVENTS_PER_TRANSACTION} THEN
    RETURN QUERY SELECT 'too_many'::text, v_current, NULL::bigint;
    RETURN;
  END IF;
  PERFORM set_config('referrals.tx_ordinal', (v_ordinal + v_count)::text, true);
  v_base := (v_xid::text::bigint << ${POSITION_TX_SHIFT}) + v_ordinal;

  INSERT INTO ${s}.events (global_position, transaction_id, stream_id, version, event_id, type, schema_version, data, metadata)
  SELECT v_base + e.n - 1, v_xid, p_stream_id, v_current + e.n::integer, e.id, e.type, e.schema_version,
         e.data, e.metadata
    FROM ROWS FROM (json_to_recordset(p_events)
           AS (id text, type text, "schemaVersion" integer, data json, metadata json))
         WITH ORDINALITY AS e(id, type, schema_version, data, metadata, n);

  RETURN QUERY SELECT 'ok'::text, v_current + v_count, v_base + v_count - 1;
END
$fn$;
`,
  },
  {
    version: 8,
    name: 'referral_facts_durations: the timings and wait-times columns of the facts, narrow',
    // Kept by the referral-facts projection in the same transaction as the facts rows (no trigger;
    // referral-facts-durations.ts), one row per facts row; filled here from the rows already there.
    // Text keys in "C" collation: the reports group and compare them by code units anyway, and
    // equality is the same in every deterministic collation.
    sql: (s) => `
CREATE TABLE ${s}.referral_facts_durations (
  referral_id text PRIMARY KEY,
  sent_at text COLLATE "C" NOT NULL,
  sender_practice_id text COLLATE "C" NOT NULL,
  receiving_practice_id text COLLATE "C",
  pool text COLLATE "C" NOT NULL,
  accept_ms bigint,
  schedule_ms bigint,
  complete_ms bigint,
  wait_ms bigint
);
CREATE INDEX referral_facts_durations_sent ON ${s}.referral_facts_durations (sent_at);
${durationsFillSql(`${s}.referral_facts`, `${s}.referral_facts_durations`)};
`,
  },
]

export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0)

export interface MigrateOptions {
  readonly schema?: string
  /** Stop after this version (default: the latest). For upgrade tests and staged roll-outs. */
  readonly upTo?: number
}

export interface MigrateResult {
  readonly applied: readonly number[]
  readonly version: number
}

/**
 * Brings the schema to `LATEST_SCHEMA_VERSION`. Idempotent and safe when several processes start
 * at once: everything runs in one transaction holding `pg_advisory_xact_lock` for this schema, so
 * a second migrator waits and then finds nothing to do. A database whose schema is newer than this
 * code is refused with `StoreUnavailable{reason:'schema'}` rather than written to.
 */
export const migrate = async (pool: pg.Pool, options: MigrateOptions = {}): Promise<MigrateResult> => {
  const schemaName = options.schema ?? DEFAULT_SCHEMA
  const s = quoteSchema(schemaName)
  let checkedOut: CheckedOutClient
  try {
    checkedOut = await checkout(pool)
  } catch (error) {
    throw new PostgresStoreError(toStoreError(error, 'migrate'))
  }
  const { client } = checkedOut
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [
      'referrals.migrate',
      schemaName,
    ])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
    const current = await client.query<{ version: number | null }>(
      `SELECT max(version) AS version FROM ${s}.schema_migrations`,
    )
    const version = current.rows[0]?.version ?? 0
    if (version > LATEST_SCHEMA_VERSION) {
      throw new PostgresStoreError({
        _tag: 'StoreUnavailable',
        reason: 'schema',
        message: `database schema "${schemaName}" is at version ${version}, newer than this code (${LATEST_SCHEMA_VERSION}); upgrade the application`,
      })
    }
    const applied: number[] = []
    for (const m of MIGRATIONS) {
      if (m.version <= version || m.version > (options.upTo ?? LATEST_SCHEMA_VERSION)) continue
      await client.query(m.sql(s))
      await client.query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`, [
        m.version,
        m.name,
      ])
      applied.push(m.version)
    }
    await client.query('COMMIT')
    return { applied, version: Math.max(version, ...applied) }
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    if (error instanceof PostgresStoreError) throw error
    throw new PostgresStoreError(toStoreError(error, 'migrate'))
  } finally {
    checkedOut.release()
  }
}
