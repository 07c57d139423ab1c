-- Who may do what: tokens (a hash of each secret, never the secret),
-- environments and secrets, one JSON record each, by kind and key.
CREATE TABLE access (
    kind   TEXT NOT NULL,
    key    TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
