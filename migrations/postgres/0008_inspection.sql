-- Customs inspection (查验, returnStatus 500) and detention (501-503, 599):
-- a task per hold receipt, and the `inspect` movement that brings a held
-- parcel's reserved stock to an inspection or quarantine bin. The SQLite
-- twin is migrations/sqlite/0008_inspection.sql: keep them in step.

-- The parcel goes to the inspection area with its reservation: locked ->
-- outside at its bin, outside -> locked at the inspection bin, two legs of
-- one operation.
ALTER TABLE movements DROP CONSTRAINT movements_kind_buckets;
ALTER TABLE movements ADD CONSTRAINT movements_kind_buckets CHECK (
        (kind = 'receive'  AND from_bucket IS NULL AND to_bucket IN ('available', 'defective')) OR
        (kind = 'lock'     AND from_bucket = 'available' AND to_bucket = 'locked') OR
        (kind = 'release'  AND from_bucket = 'locked' AND to_bucket = 'available') OR
        (kind = 'ship'     AND from_bucket = 'locked' AND to_bucket IS NULL) OR
        (kind = 'damage'   AND from_bucket IN ('available', 'locked') AND to_bucket = 'defective') OR
        (kind = 'adjust'   AND from_bucket IS NULL AND to_bucket IN ('available', 'defective')) OR
        (kind = 'adjust'   AND from_bucket IN ('available', 'defective') AND to_bucket IS NULL) OR
        (kind = 'transfer' AND from_bucket = 'available' AND to_bucket IS NULL) OR
        (kind = 'transfer' AND from_bucket IS NULL AND to_bucket = 'available') OR
        (kind = 'pick'     AND from_bucket = 'locked' AND to_bucket IS NULL) OR
        (kind = 'pick'     AND from_bucket IS NULL AND to_bucket = 'locked') OR
        (kind = 'pack'     AND from_bucket = 'locked' AND to_bucket IS NULL) OR
        (kind = 'pack'     AND from_bucket IS NULL AND to_bucket = 'locked') OR
        (kind = 'inspect'  AND from_bucket = 'locked' AND to_bucket IS NULL) OR
        (kind = 'inspect'  AND from_bucket IS NULL AND to_bucket = 'locked')
);

-- One task per customs hold (CUSTOMS.md §2): 500 inspection sends the
-- parcel to the inspection area, 501-503/599 detention to quarantine. The
-- hold receipt is the task's identity: the same receipt again (a replay, a
-- re-sent copy, the same status at the same returnTime) finds the task
-- already there. The task is created in the transaction that stores the
-- receipt.
CREATE TABLE customs_tasks (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('inspection', 'quarantine')),
    order_id      BIGINT NOT NULL REFERENCES orders(id),
    cop_no        TEXT NOT NULL,
    receipt_id    BIGINT NOT NULL REFERENCES customs_receipts(id),
    return_status BIGINT NOT NULL,
    return_time   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'moved', 'closed')),
    -- The inspection (or quarantine) bin the parcel was moved to.
    location_id   BIGINT REFERENCES locations(id),
    created_at    TIMESTAMPTZ NOT NULL,
    moved_by      TEXT,
    moved_at      TIMESTAMPTZ,
    closed_by     TEXT,
    closed_at     TIMESTAMPTZ,
    note          TEXT,
    UNIQUE (cop_no, return_status, return_time),
    CHECK (state <> 'moved' OR location_id IS NOT NULL),
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX customs_tasks_state ON customs_tasks(state, id);
CREATE INDEX customs_tasks_order ON customs_tasks(order_id);

-- A closed task is history: it never changes again.
CREATE FUNCTION customs_tasks_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'closed' THEN
        RAISE EXCEPTION 'a closed customs task cannot change';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER customs_tasks_closed BEFORE UPDATE ON customs_tasks
    FOR EACH ROW EXECUTE FUNCTION customs_tasks_closed();
