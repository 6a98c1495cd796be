-- Up Migration
-- Novelty index: MinHash signatures of corpus entries and candidates, and their LSH band
-- buckets. A signature is only comparable with signatures made under the same MinHash
-- parameters (permutations, seed, shingle size, normalization), so every row is keyed by
-- them; band buckets are further keyed by rows per band (the layout the threshold picks:
-- band i covers signature positions [i*r, (i+1)*r), whatever the number of bands).

CREATE TABLE minhash_params (
  id          serial PRIMARY KEY,
  key         text NOT NULL UNIQUE,           -- e.g. affine32/s1/p128/k7/n1-ins
  params      jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE minhash_signatures (
  id            bigserial PRIMARY KEY,
  params_id     integer NOT NULL REFERENCES minhash_params(id) ON DELETE CASCADE,
  corpus_id     bigint REFERENCES corpus(id) ON DELETE CASCADE,
  candidate_id  bigint REFERENCES candidates(id) ON DELETE CASCADE,
  shingles      integer NOT NULL CHECK (shingles >= 0),
  signature     bytea NOT NULL,                 -- num_perm uint32 values, little-endian
  created_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (num_nonnulls(corpus_id, candidate_id) = 1),
  UNIQUE (params_id, corpus_id),
  UNIQUE (params_id, candidate_id)
);
CREATE INDEX minhash_signatures_candidate ON minhash_signatures (candidate_id) WHERE candidate_id IS NOT NULL;
CREATE INDEX minhash_signatures_corpus ON minhash_signatures (corpus_id) WHERE corpus_id IS NOT NULL;

CREATE TABLE lsh_bands (
  params_id     integer NOT NULL,
  rows_per_band smallint NOT NULL CHECK (rows_per_band > 0),
  band          smallint NOT NULL CHECK (band >= 0),
  bucket        bigint NOT NULL,                -- 64-bit hash of the band's values
  signature_id  bigint NOT NULL REFERENCES minhash_signatures(id) ON DELETE CASCADE,
  PRIMARY KEY (params_id, rows_per_band, band, bucket, signature_id)
);
CREATE INDEX lsh_bands_signature ON lsh_bands (signature_id);

-- Structural novelty looks corpus entries up by graph-IR hash.
CREATE INDEX corpus_structural_hash ON corpus (structural_hash) WHERE structural_hash IS NOT NULL;

-- Down Migration
DROP INDEX corpus_structural_hash;
DROP TABLE lsh_bands;
DROP TABLE minhash_signatures;
DROP TABLE minhash_params;
