-- What an import job did, line by line (stages, the file found, the mapping used, the outcome),
-- partitioned by month: the application creates the month's partition and the next one as
-- jobs start (Imports::ensure_log_partitions); rows of a month without one land in the default
-- partition. Old months are dropped as whole partitions.
CREATE TABLE import_logs (
    id UUID NOT NULL,
    job_id UUID NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message TEXT NOT NULL,
    details JSONB
) PARTITION BY RANGE (at);
CREATE TABLE import_logs_default PARTITION OF import_logs DEFAULT;
CREATE INDEX import_logs_job ON import_logs (job_id, at);

-- The file of each import job: where it is, what it is (as detected or given).
CREATE TABLE import_files (
    job_id UUID PRIMARY KEY,
    supplier_id UUID NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT,
    size BIGINT,
    sha256 TEXT,
    source_url TEXT,
    format TEXT,
    encoding TEXT,
    delimiter TEXT,
    sheet TEXT,
    header_line BIGINT,
    profile TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX import_files_supplier ON import_files (supplier_id, created_at);
