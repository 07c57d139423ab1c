-- Schedules of deployed functions: when each runs next, and the tick it
-- ran last with that run's call. A tick is claimed in the transaction
-- that records its call, so no tick is claimed twice, across restarts and
-- failovers alike.
CREATE TABLE schedules (
    app          TEXT NOT NULL,
    function     TEXT NOT NULL,
    version      INTEGER NOT NULL,
    spec         TEXT NOT NULL,
    next_ms      INTEGER NOT NULL,
    last_tick_ms INTEGER,
    last_call_id TEXT,
    PRIMARY KEY (app, function)
);
-- The tick a scheduled call ran for (NULL for every other call).
ALTER TABLE calls ADD COLUMN scheduled_ms INTEGER;
