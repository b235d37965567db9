-- The rows an import rejected: where (the physical line of a text file, or the row of a sheet,
-- 1-based, the header counted), which column, the value, a stable code and a message, and the
-- row's cells as they were (JSON array), for the rejects file a supplier can fix and re-send.
CREATE TABLE import_errors (
    id BLOB PRIMARY KEY NOT NULL,
    job_id BLOB NOT NULL,
    line BIGINT NOT NULL,
    column_name TEXT,
    value TEXT,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    -- JSON array
    raw TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL
);
CREATE INDEX import_errors_job ON import_errors (job_id, line, id);
