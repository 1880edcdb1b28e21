-- Many API and worker processes on one database (issue 17 §4).
--
-- Rate-limit windows shared by every API process: one row per limited key (a route's bucket and a
-- principal, or failed authentications and an IP), a fixed window that starts at its first hit.
-- UNLOGGED: counters are not worth WAL, and after a crash every limit simply starts over. No index
-- but the key, so the counting UPDATE stays HOT; expired rows are deleted in bulk (seq scan over
-- the live keys only). Column names avoid `key`/`*_key`: the sweeper reads those as storage keys.
CREATE UNLOGGED TABLE rate_limit_windows (
  name       text PRIMARY KEY,
  count      integer NOT NULL,
  expires_at timestamptz NOT NULL
) WITH (fillfactor = 70);

-- Periodic jobs (sweeper, post media lifecycle) run once per cluster per interval: the process
-- that holds the job's advisory lock and finds it due records the start here.
CREATE TABLE periodic_runs (
  name            text PRIMARY KEY,
  last_started_at timestamptz NOT NULL,
  last_owner      text NOT NULL
);
