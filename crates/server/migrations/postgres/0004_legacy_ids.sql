-- Meetings imported from the service this one replaces (`meeting-service import
-- mongo-export`): the MongoDB `_id` of the record they came from. It makes a second
-- import of the same export a no-op, and keeps the original id with the meeting. NULL
-- for meetings created here; NULLs do not collide in a unique index.
ALTER TABLE meetings ADD COLUMN legacy_id TEXT;
CREATE UNIQUE INDEX meetings_legacy_id ON meetings (legacy_id);
