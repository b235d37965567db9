-- Bumped whenever a user's access tokens must stop working before they expire (deactivation,
-- role change, password change, logout); tokens carry the generation they were issued under.
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
