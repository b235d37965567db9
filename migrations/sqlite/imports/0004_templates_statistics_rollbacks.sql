-- Mapping templates: a supplier's reusable column mapping with transforms (pm_imports::template,
-- as JSON). Several per supplier, each with a name unique for it.
CREATE TABLE mapping_templates (
    id BLOB PRIMARY KEY,
    supplier_id BLOB NOT NULL,
    name TEXT NOT NULL,
    template TEXT NOT NULL,
    created_by BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (supplier_id, name)
);

-- Per supplier and day (UTC): how its imports went, summed as jobs finish.
CREATE TABLE import_statistics (
    supplier_id BLOB NOT NULL,
    day TEXT NOT NULL,
    jobs INTEGER NOT NULL DEFAULT 0,
    failed_jobs INTEGER NOT NULL DEFAULT 0,
    rows_read INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (supplier_id, day)
);

-- Import jobs that were rolled back, and what the rollback did (JSON report). A job is rolled
-- back at most once (the primary key).
CREATE TABLE import_rollbacks (
    job_id BLOB PRIMARY KEY,
    rolled_back_by BLOB,
    rolled_back_at TEXT NOT NULL,
    report TEXT NOT NULL
);
