/**
 * The raw commit limit the benchmarks compare against: a one-row INSERT into a table of its own
 * (one primary key, the payload columns of an event) that commits on its own, with fsync and
 * synchronous commit as the stores have them. Shared by `bench/store` and `bench/http`.
 */
export const RAW_TABLE_DDL = `CREATE TABLE IF NOT EXISTS bench_raw_commit (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       stream_id text NOT NULL, event_id text NOT NULL, type text NOT NULL, data json NOT NULL, metadata json NOT NULL)`

export const RAW_INSERT_SQL =
  'INSERT INTO bench_raw_commit (stream_id, event_id, type, data, metadata) VALUES ($1, $2, $3, $4, $5)'
