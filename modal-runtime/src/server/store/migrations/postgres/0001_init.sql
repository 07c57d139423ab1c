-- The control plane's state: apps and versions, bound class instances,
-- the id counter's mark, and every detached call with its inputs.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE versions (
    app     TEXT NOT NULL,
    version BIGINT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (app, version)
);
CREATE TABLE apps (
    app     TEXT PRIMARY KEY,
    stopped BOOLEAN NOT NULL
);
CREATE TABLE instances (
    id        BIGINT PRIMARY KEY,
    class_id  BIGINT NOT NULL,
    params    BYTEA NOT NULL,
    overrides TEXT NOT NULL
);
CREATE TABLE calls (
    id          TEXT PRIMARY KEY,
    app         TEXT NOT NULL,
    function    TEXT NOT NULL,
    function_id BIGINT NOT NULL,
    method      TEXT NOT NULL,
    is_map      BOOLEAN NOT NULL,
    total       BIGINT,
    created_ms  BIGINT NOT NULL,
    outcome     BYTEA,
    finished_ms BIGINT,
    expired     BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX calls_open ON calls (id) WHERE finished_ms IS NULL;
CREATE INDEX calls_finished ON calls (finished_ms) WHERE finished_ms IS NOT NULL;
CREATE TABLE inputs (
    call_id   TEXT NOT NULL,
    idx       BIGINT NOT NULL,
    args      BYTEA NOT NULL,
    args_blob TEXT NOT NULL,
    attempt   INTEGER NOT NULL DEFAULT 0,
    result    BYTEA,
    PRIMARY KEY (call_id, idx)
);
