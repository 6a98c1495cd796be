-- Up Migration
-- archloop's core schema. Every write is keyed so that a retried activity writes the same
-- row again instead of a second one: runs by workflow id, cycles by (run, cycle),
-- candidates by (run, cycle, sample index), corpus entries by a source key.

CREATE TABLE runs (
  id          text PRIMARY KEY,               -- the designRun workflow id
  name        text NOT NULL,
  preset      text NOT NULL,
  config      jsonb NOT NULL,
  status      text NOT NULL DEFAULT 'running',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

CREATE TABLE prompts (
  hash        text PRIMARY KEY,               -- sha256 of the rendered prompt text
  template    text NOT NULL,                  -- template name, e.g. design-v1
  template_hash text NOT NULL,                -- sha256 of the template file
  body        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cycles (
  run_id      text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  cycle       integer NOT NULL CHECK (cycle >= 0),
  model       text NOT NULL,                  -- model sampled from in this cycle
  status      text NOT NULL DEFAULT 'running',
  metrics     jsonb,
  timings     jsonb NOT NULL DEFAULT '{}'::jsonb,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (run_id, cycle)
);

CREATE TABLE candidates (
  id               bigserial PRIMARY KEY,
  run_id           text NOT NULL,
  cycle            integer NOT NULL,
  sample_index     integer NOT NULL CHECK (sample_index >= 0),
  model            text NOT NULL,
  prompt_hash      text REFERENCES prompts(hash),
  completion       text,                      -- raw LLM output, stored before parsing
  code             text,                      -- extracted program
  -- lifecycle: sampled | extract-failed -> valid | invalid -> trained | train-failed
  --            -> novel | duplicate -> admitted
  status           text NOT NULL DEFAULT 'sampled',
  valid            boolean,                   -- null until validated
  novel            boolean,                   -- null until checked
  admitted         boolean NOT NULL DEFAULT false,
  failure_class    text,
  failure_message  text,
  usage            jsonb,                     -- tokens, latency
  validation       jsonb,                     -- sandbox validate result
  training         jsonb,                     -- sandbox train result
  graph_ir         jsonb,
  structural_hash  text,
  params           bigint,
  flops            double precision,
  accuracy         double precision,
  novelty          jsonb,                     -- nearest neighbour, similarity, verdict
  timings          jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, cycle, sample_index),
  FOREIGN KEY (run_id, cycle) REFERENCES cycles(run_id, cycle) ON DELETE CASCADE
);
CREATE INDEX candidates_run_cycle_status ON candidates (run_id, cycle, status);
CREATE INDEX candidates_structural_hash ON candidates (structural_hash);

CREATE TABLE corpus (
  id           bigserial PRIMARY KEY,
  source       text NOT NULL,                 -- 'lemur' | 'archloop' | 'import'
  source_key   text NOT NULL UNIQUE,          -- e.g. lemur:<name>, or <runId>/<cycle>/<index>
  name         text,
  code         text NOT NULL,
  dataset      text,
  accuracy     double precision,
  licence      text,
  run_id       text REFERENCES runs(id) ON DELETE CASCADE,  -- null for seed entries
  cycle        integer,
  candidate_id bigint REFERENCES candidates(id) ON DELETE CASCADE,
  prompt_hash  text REFERENCES prompts(hash),
  structural_hash text,
  provenance   jsonb NOT NULL DEFAULT '{}'::jsonb,
  added_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX corpus_run_cycle ON corpus (run_id, cycle);

CREATE TABLE adapters (
  id          bigserial PRIMARY KEY,
  run_id      text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  cycle       integer NOT NULL,
  path        text NOT NULL,
  base_model  text NOT NULL,
  parent_id   bigint REFERENCES adapters(id),
  data_hash   text,
  manifest    jsonb NOT NULL DEFAULT '{}'::jsonb,
  model_name  text,                           -- name under which it is served, once published
  status      text NOT NULL DEFAULT 'training',
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, cycle)
);

-- Down Migration
DROP TABLE adapters;
DROP TABLE corpus;
DROP TABLE candidates;
DROP TABLE cycles;
DROP TABLE prompts;
DROP TABLE runs;
