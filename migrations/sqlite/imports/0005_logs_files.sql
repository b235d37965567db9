-- What an import job did, line by line (stages, the file found, the mapping used, the outcome).
-- (Partitioned by month on PostgreSQL; one table here.)
CREATE TABLE import_logs (
    id BLOB PRIMARY KEY NOT NULL,
    job_id BLOB NOT NULL,
    at TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message TEXT NOT NULL,
    details TEXT
);
CREATE INDEX import_logs_job ON import_logs (job_id, at);

-- The file of each import job: where it is, what it is (as detected or given).
CREATE TABLE import_files (
    job_id BLOB PRIMARY KEY NOT NULL,
    supplier_id BLOB NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT,
    size INTEGER,
    sha256 TEXT,
    source_url TEXT,
    format TEXT,
    encoding TEXT,
    delimiter TEXT,
    sheet TEXT,
    header_line INTEGER,
    profile TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX import_files_supplier ON import_files (supplier_id, created_at);
