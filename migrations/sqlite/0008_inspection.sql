-- Customs inspection (查验, returnStatus 500) and detention (501-503, 599):
-- a task per hold receipt, and the `inspect` movement that brings a held
-- parcel's reserved stock to an inspection or quarantine bin. The
-- PostgreSQL twin is migrations/postgres/0008_inspection.sql: keep them in
-- step.

-- The parcel goes to the inspection area with its reservation: locked ->
-- outside at its bin, outside -> locked at the inspection bin, two legs of
-- one operation. SQLite cannot alter a CHECK: the table is rebuilt as in
-- 0003 and 0004.
CREATE TABLE movements_new (
    id             INTEGER PRIMARY KEY,
    operation_id   INTEGER REFERENCES operations(id),
    kind           TEXT NOT NULL,
    sku_id         INTEGER NOT NULL REFERENCES skus(id),
    location_id    INTEGER NOT NULL REFERENCES locations(id),
    lot_id         INTEGER NOT NULL REFERENCES lots(id),
    qty            INTEGER NOT NULL CHECK (qty > 0),
    from_bucket    TEXT,
    to_bucket      TEXT,
    doc_type       TEXT NOT NULL,
    doc_no         TEXT NOT NULL,
    customs_doc_no TEXT,
    reason         TEXT,
    actor          TEXT NOT NULL,
    approver       TEXT,
    lock_id        INTEGER REFERENCES locks(id),
    at             TEXT NOT NULL,
    -- The same table as MovementKind::allows in src/domain/ledger.rs.
    CHECK (
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
    )
);

-- Copied row for row: the ledger keeps its ids, so nothing changes on the
-- books (and no trigger fires: the new table has none yet).
INSERT INTO movements_new (id, operation_id, kind, sku_id, location_id, lot_id, qty, from_bucket, to_bucket,
        doc_type, doc_no, customs_doc_no, reason, actor, approver, lock_id, at)
    SELECT id, operation_id, kind, sku_id, location_id, lot_id, qty, from_bucket, to_bucket,
        doc_type, doc_no, customs_doc_no, reason, actor, approver, lock_id, at
    FROM movements;
DROP TABLE movements;
ALTER TABLE movements_new RENAME TO movements;
CREATE INDEX movements_sku ON movements(sku_id, id);
CREATE INDEX movements_location ON movements(location_id, id);
CREATE INDEX movements_doc ON movements(doc_no);

-- Balances are what the ledger sums to: the only way a holding changes is a
-- movement, applied here by the database itself. The CHECKs on holdings abort
-- any movement that would take a figure below zero.
CREATE TRIGGER movements_apply AFTER INSERT ON movements
BEGIN
    INSERT OR IGNORE INTO holdings (sku_id, location_id, lot_id) VALUES (NEW.sku_id, NEW.location_id, NEW.lot_id);
    UPDATE holdings SET
        available = available + (CASE WHEN NEW.to_bucket = 'available' THEN NEW.qty ELSE 0 END)
                              - (CASE WHEN NEW.from_bucket = 'available' THEN NEW.qty ELSE 0 END),
        locked    = locked    + (CASE WHEN NEW.to_bucket = 'locked' THEN NEW.qty ELSE 0 END)
                              - (CASE WHEN NEW.from_bucket = 'locked' THEN NEW.qty ELSE 0 END),
        defective = defective + (CASE WHEN NEW.to_bucket = 'defective' THEN NEW.qty ELSE 0 END)
                              - (CASE WHEN NEW.from_bucket = 'defective' THEN NEW.qty ELSE 0 END)
    WHERE sku_id = NEW.sku_id AND location_id = NEW.location_id AND lot_id = NEW.lot_id;
END;

CREATE TRIGGER movements_no_update BEFORE UPDATE ON movements
BEGIN SELECT RAISE(ABORT, 'the movement ledger is append-only'); END;
CREATE TRIGGER movements_no_delete BEFORE DELETE ON movements
BEGIN SELECT RAISE(ABORT, 'the movement ledger is append-only'); END;

-- One task per customs hold (CUSTOMS.md §2): 500 inspection sends the
-- parcel to the inspection area, 501-503/599 detention to quarantine. The
-- hold receipt is the task's identity: the same receipt again (a replay, a
-- re-sent copy, the same status at the same returnTime) finds the task
-- already there. The task is created in the transaction that stores the
-- receipt.
CREATE TABLE customs_tasks (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('inspection', 'quarantine')),
    order_id      INTEGER NOT NULL REFERENCES orders(id),
    cop_no        TEXT NOT NULL,
    receipt_id    INTEGER NOT NULL REFERENCES customs_receipts(id),
    return_status INTEGER NOT NULL,
    return_time   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'moved', 'closed')),
    -- The inspection (or quarantine) bin the parcel was moved to.
    location_id   INTEGER REFERENCES locations(id),
    created_at    TEXT NOT NULL,
    moved_by      TEXT,
    moved_at      TEXT,
    closed_by     TEXT,
    closed_at     TEXT,
    note          TEXT,
    UNIQUE (cop_no, return_status, return_time),
    CHECK (state <> 'moved' OR location_id IS NOT NULL),
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX customs_tasks_state ON customs_tasks(state, id);
CREATE INDEX customs_tasks_order ON customs_tasks(order_id);

-- A closed task is history: it never changes again.
CREATE TRIGGER customs_tasks_closed BEFORE UPDATE ON customs_tasks
WHEN OLD.state = 'closed'
BEGIN SELECT RAISE(ABORT, 'a closed customs task cannot change'); END;
