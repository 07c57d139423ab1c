-- The control plane's state: apps and versions, bound class instances,
-- the id counter's mark, and every detached call with its inputs.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE versions (
    app     TEXT NOT NULL,
    version INTEGER NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (app, version)
);
CREATE TABLE apps (
    app     TEXT PRIMARY KEY,
    stopped INTEGER NOT NULL
);
CREATE TABLE instances (
    id        INTEGER PRIMARY KEY,
    class_id  INTEGER NOT NULL,
    params    BLOB NOT NULL,
    overrides TEXT NOT NULL
);
CREATE TABLE calls (
    id          TEXT PRIMARY KEY,
    app         TEXT NOT NULL,
    function    TEXT NOT NULL,
    function_id INTEGER NOT NULL,
    method      TEXT NOT NULL,
    is_map      INTEGER NOT NULL,
    total       INTEGER,
    created_ms  INTEGER NOT NULL,
    outcome     BLOB,
    finished_ms INTEGER,
    expired     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX calls_open ON calls (id) WHERE finished_ms IS NULL;
CREATE INDEX calls_finished ON calls (finished_ms) WHERE finished_ms IS NOT NULL;
CREATE TABLE inputs (
    call_id   TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    args      BLOB NOT NULL,
    args_blob TEXT NOT NULL,
    attempt   INTEGER NOT NULL DEFAULT 0,
    result    BLOB,
    PRIMARY KEY (call_id, idx)
) WITHOUT ROWID;
