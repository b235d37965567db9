-- The durable job queue of this database (see storage/src/jobs.rs). Times are milliseconds
-- since the Unix epoch, read from the application's clock, so that both backends compare them
-- the same way and tests can drive time.
CREATE TABLE export_jobs (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    -- JSON
    payload TEXT NOT NULL,
    -- jobs of one group (a supplier, say) are listed together
    group_key TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    -- not claimed before this time (a retry's backoff)
    run_at BIGINT NOT NULL,
    -- who holds the job while it runs, and until when; a claim that finds the lease expired
    -- takes the job over, and every write of the old holder is then refused (fencing)
    lease_owner TEXT,
    lease_expires_at BIGINT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    -- JSON, as last reported by the running job
    progress TEXT,
    -- JSON
    result TEXT,
    last_error TEXT,
    created_by BLOB,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    updated_at BIGINT NOT NULL
);
-- the claim: queued jobs that are due, best priority first
CREATE INDEX export_jobs_due ON export_jobs (status, priority DESC, run_at);
CREATE INDEX export_jobs_lease ON export_jobs (status, lease_expires_at);
CREATE INDEX export_jobs_created ON export_jobs (created_at DESC, id DESC);
CREATE INDEX export_jobs_group ON export_jobs (group_key, created_at DESC);
