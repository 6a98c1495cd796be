-- Up Migration
-- Repair from errors: a candidate that failed gets further attempts, each its own row with
-- its parent, keyed by (run, cycle, sample index, attempt); attempt 0 is the first sample.
-- Prompts keep the whole conversation sent (a repair prompt quotes the failed program, and
-- a prefilled reply is part of what the LLM was given).
-- Seed checks: a corpus entry teaches (fine-tune pair, prompt reference) only after it
-- validated at the run's own input shape and budget (its "profile").

ALTER TABLE prompts ADD COLUMN messages jsonb;

ALTER TABLE candidates ADD COLUMN attempt integer NOT NULL DEFAULT 0 CHECK (attempt >= 0);
ALTER TABLE candidates ADD COLUMN parent_id bigint REFERENCES candidates(id) ON DELETE CASCADE;
ALTER TABLE candidates DROP CONSTRAINT candidates_run_id_cycle_sample_index_key;
ALTER TABLE candidates ADD CONSTRAINT candidates_run_cycle_sample_attempt_key UNIQUE (run_id, cycle, sample_index, attempt);
CREATE INDEX candidates_parent ON candidates (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE corpus_checks (
  corpus_id        bigint NOT NULL REFERENCES corpus(id) ON DELETE CASCADE,
  profile          text NOT NULL,               -- dataset, input shape and budget, see src/corpus/checks.ts
  valid            boolean NOT NULL,
  failure_class    text,
  failure_message  text,
  params           bigint,
  flops            double precision,
  structural_hash  text,
  checked_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (corpus_id, profile)
);
CREATE INDEX corpus_checks_profile_valid ON corpus_checks (profile) WHERE valid;

-- Down Migration
DROP TABLE corpus_checks;
DROP INDEX candidates_parent;
ALTER TABLE candidates DROP CONSTRAINT candidates_run_cycle_sample_attempt_key;
DELETE FROM candidates WHERE attempt > 0;
ALTER TABLE candidates ADD CONSTRAINT candidates_run_id_cycle_sample_index_key UNIQUE (run_id, cycle, sample_index);
ALTER TABLE candidates DROP COLUMN parent_id;
ALTER TABLE candidates DROP COLUMN attempt;
ALTER TABLE prompts DROP COLUMN messages;
