-- Invite links (`POST /api/meetings/:roomId/invites`): each row is one link's
-- server-side state. The link carries a signed token naming the row; redeeming it counts
-- one use in a single conditional UPDATE, so that concurrent redemptions on any number
-- of nodes never exceed `max_uses` (NULL: unlimited). Gone with the meeting.
CREATE TABLE invites (
    invite_id  TEXT    PRIMARY KEY NOT NULL,
    room_id    TEXT    NOT NULL REFERENCES meetings (room_id) ON DELETE CASCADE,
    role       TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    max_uses   INTEGER,
    uses       INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER
);
CREATE INDEX invites_room ON invites (room_id, created_at);
