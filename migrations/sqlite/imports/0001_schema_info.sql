-- Names the logical database this physical database holds, so that pointing two logical
-- databases at the same physical one is refused at start with a clear message.
CREATE TABLE schema_info (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO schema_info (name) VALUES ('imports');
