-- Mapping templates: a supplier's reusable column mapping with transforms (pm_imports::template,
-- as JSON). Several per supplier, each with a name unique for it.
CREATE TABLE mapping_templates (
    id UUID PRIMARY KEY,
    supplier_id UUID NOT NULL,
    name TEXT NOT NULL,
    template JSONB NOT NULL,
    created_by UUID,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (supplier_id, name)
);

-- Per supplier and day (UTC): how its imports went, summed as jobs finish.
CREATE TABLE import_statistics (
    supplier_id UUID NOT NULL,
    day DATE NOT NULL,
    jobs BIGINT NOT NULL DEFAULT 0,
    failed_jobs BIGINT NOT NULL DEFAULT 0,
    rows_read BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (supplier_id, day)
);

-- Import jobs that were rolled back, and what the rollback did (JSON report). A job is rolled
-- back at most once (the primary key).
CREATE TABLE import_rollbacks (
    job_id UUID PRIMARY KEY,
    rolled_back_by UUID,
    rolled_back_at TIMESTAMPTZ NOT NULL,
    report JSONB NOT NULL
);
