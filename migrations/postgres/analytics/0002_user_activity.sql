-- Every write through the API: who, what, when, which entity.
CREATE TABLE user_activity (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID,
    api_key_id UUID,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT,
    request_id TEXT,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX user_activity_at ON user_activity (at);
CREATE INDEX user_activity_entity ON user_activity (entity, entity_id);
CREATE INDEX user_activity_user ON user_activity (user_id, at);
