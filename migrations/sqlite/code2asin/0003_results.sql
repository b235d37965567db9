-- Code2ASIN: what a job asked, what Amazon answered, what was applied. Times are milliseconds
-- since the Unix epoch and days are 'YYYY-MM-DD' text (UTC), the same on both backends.

-- One row per job: its account and marketplace, pause switch and request counters (the
-- per-status counts are read from code2asin_results).
CREATE TABLE code2asin_job_state (
    job_id BLOB PRIMARY KEY,
    supplier_id BLOB,
    account_key TEXT NOT NULL,
    marketplace_id TEXT NOT NULL,
    auto_apply_threshold REAL NOT NULL,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    total INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    throttles INTEGER NOT NULL DEFAULT 0,
    cache_hits INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One row per EAN of a job, in the job's order (seq).
CREATE TABLE code2asin_results (
    job_id BLOB NOT NULL,
    ean TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'matched', 'multiple', 'not_found', 'error')),
    -- JSON: every candidate ASIN with title, brand, sales rank and image
    candidates TEXT,
    -- the preferred ASIN (matched, or the best of several), or the one a person chose
    asin TEXT,
    confidence REAL,
    reason TEXT,
    -- written to the catalog's products.asin
    applied BOOLEAN NOT NULL DEFAULT FALSE,
    chosen_by BLOB,
    from_cache BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, ean)
);
CREATE UNIQUE INDEX code2asin_results_seq ON code2asin_results (job_id, seq);
CREATE INDEX code2asin_results_status ON code2asin_results (job_id, status, seq);

-- What Amazon answered for a code in a marketplace (GTIN-14): the persisted cache behind the
-- in-memory and Redis levels, trusted for cache.ttl.code2asin_secs.
CREATE TABLE code2asin_history (
    marketplace_id TEXT NOT NULL,
    gtin14 TEXT NOT NULL,
    -- JSON: the candidates (empty: not found)
    candidates TEXT NOT NULL,
    resolved_at INTEGER NOT NULL,
    PRIMARY KEY (marketplace_id, gtin14)
);

-- Per supplier: which account and marketplace resolve its products, and from which
-- confidence a match is applied without a person.
CREATE TABLE code2asin_suppliers (
    supplier_id BLOB PRIMARY KEY,
    account_id BLOB,
    marketplace TEXT,
    auto_apply_threshold REAL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at INTEGER NOT NULL
);

-- Per supplier ('none' for a plain list of EANs) and day: how matching went.
CREATE TABLE code2asin_statistics (
    supplier_key TEXT NOT NULL,
    day TEXT NOT NULL,
    jobs INTEGER NOT NULL DEFAULT 0,
    eans INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    matched INTEGER NOT NULL DEFAULT 0,
    multiple INTEGER NOT NULL DEFAULT 0,
    not_found INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    throttles INTEGER NOT NULL DEFAULT 0,
    cache_hits INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (supplier_key, day)
);

-- A job's log lines.
CREATE TABLE code2asin_logs (
    id BLOB PRIMARY KEY,
    job_id BLOB NOT NULL,
    at INTEGER NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX code2asin_logs_job ON code2asin_logs (job_id, at);
