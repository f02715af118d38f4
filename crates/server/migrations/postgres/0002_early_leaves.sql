-- Leaves that reached the store before their connection's join row did (the join's
-- transaction and the leave's run concurrently, e.g. a connection replaced or gone while
-- its join was still being written). The join insert consumes the entry and writes its
-- row already closed, so a history row never stays open because of the order of writes.
CREATE TABLE early_leaves (
    peer_id TEXT    PRIMARY KEY NOT NULL,
    room_id TEXT    NOT NULL REFERENCES meetings (room_id) ON DELETE CASCADE,
    left_at BIGINT NOT NULL
);
CREATE INDEX early_leaves_room ON early_leaves (room_id);
