-- Meetings and their participant history. Times are milliseconds since the Unix epoch
-- (UTC) so that SQLite and PostgreSQL store them alike; booleans are 0/1 integers.
CREATE TABLE meetings (
    room_id           TEXT    PRIMARY KEY NOT NULL,
    title             TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    host_id           TEXT    NOT NULL,
    status            TEXT    NOT NULL,          -- scheduled | active | ended
    max_participants  INTEGER NOT NULL,
    settings          TEXT    NOT NULL,          -- JSON: allowChat, allowScreenShare, …
    topology          TEXT    NOT NULL,          -- mesh | sfu
    scheduled_at      INTEGER,
    started_at        INTEGER,
    ended_at          INTEGER,
    end_reason        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_activity_at  INTEGER NOT NULL,
    -- Since when nobody is in the meeting (NULL while somebody is): the TTL sweeper's clock.
    empty_since       INTEGER,
    peak_participants INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX meetings_host ON meetings (host_id, created_at);
CREATE INDEX meetings_idle ON meetings (status, empty_since);

CREATE TABLE participants (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id      TEXT    NOT NULL REFERENCES meetings (room_id) ON DELETE CASCADE,
    user_id      TEXT    NOT NULL,
    peer_id      TEXT    NOT NULL UNIQUE,
    user_name    TEXT    NOT NULL,
    user_picture TEXT,
    is_host      INTEGER NOT NULL,
    joined_at    INTEGER NOT NULL,
    left_at      INTEGER
);
CREATE INDEX participants_room ON participants (room_id, left_at);
CREATE INDEX participants_user ON participants (user_id);
