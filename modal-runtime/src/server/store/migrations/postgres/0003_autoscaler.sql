-- Autoscaler settings changed at run time (`update_autoscaler`), one row
-- per function or class instance: they stand until the app is deployed
-- again, when the rows of its older versions are dropped. A NULL
-- `max_containers` is the server's default. Rows are few (only what was
-- changed), so the deploy's delete by app needs no index.
CREATE TABLE autoscaler (
    function_id           BIGINT PRIMARY KEY,
    app                   TEXT NOT NULL,
    version               BIGINT NOT NULL,
    min_containers        INTEGER NOT NULL,
    max_containers        INTEGER,
    buffer_containers     INTEGER NOT NULL,
    scaledown_window_secs INTEGER NOT NULL
);
