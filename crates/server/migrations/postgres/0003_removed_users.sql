-- Users the host removed from a meeting: their joins are refused (`REMOVED`) until the
-- host lets them back (`host-allow`). Gone with the meeting.
CREATE TABLE removed_users (
    room_id    TEXT   NOT NULL REFERENCES meetings (room_id) ON DELETE CASCADE,
    user_id    TEXT   NOT NULL,
    removed_by TEXT   NOT NULL,
    removed_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
