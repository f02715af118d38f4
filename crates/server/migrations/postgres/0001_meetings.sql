-- Meetings and their participant history. Times are milliseconds since the Unix epoch
-- (UTC) so that SQLite and PostgreSQL store them alike; booleans are 0/1 integers.
CREATE TABLE meetings (
    room_id           TEXT    PRIMARY KEY NOT NULL,
    title             TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    host_id           TEXT    NOT NULL,
    status            TEXT    NOT NULL,          -- scheduled | active | ended
    max_participants  BIGINT  NOT NULL,
    settings          TEXT    NOT NULL,          -- JSON: allowChat, allowScreenShare, …
    topology          TEXT    NOT NULL,          -- mesh | sfu
    scheduled_at      BIGINT,
    started_at        BIGINT,
    ended_at          BIGINT,
    end_reason        TEXT,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    last_activity_at  BIGINT  NOT NULL,
    -- Since when nobody is in the meeting (NULL while somebody is): the TTL sweeper's clock.
    empty_since       BIGINT,
    peak_participants BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX meetings_host ON meetings (host_id, created_at);
CREATE INDEX meetings_idle ON meetings (status, empty_since);

CREATE TABLE participants (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id      TEXT    NOT NULL REFERENCES meetings (room_id) ON DELETE CASCADE,
    user_id      TEXT    NOT NULL,
    peer_id      TEXT    NOT NULL UNIQUE,
    user_name    TEXT    NOT NULL,
    user_picture TEXT,
    is_host      BIGINT  NOT NULL,
    joined_at    BIGINT  NOT NULL,
    left_at      BIGINT 
);
CREATE INDEX participants_room ON participants (room_id, left_at);
CREATE INDEX participants_user ON participants (user_id);
