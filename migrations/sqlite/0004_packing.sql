-- Packing: parcels, box types, waybill ranges, weight exceptions, the
-- label print queue, and the `pack` movement (tote -> station outbound).
-- The PostgreSQL twin is migrations/postgres/0004_packing.sql: keep them in step.

-- Packed goods leave the tote for the station's outbound staging with a new
-- movement kind, `pack`, so the tote is empty on the books when it is
-- empty on the floor. SQLite cannot alter a CHECK: the table is rebuilt as
-- in 0003.
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
        (kind = 'pack'     AND from_bucket IS NULL AND to_bucket = 'locked')
    )
);

INSERT INTO movements_new SELECT * FROM movements;
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


-- Box types the pack stations use, with the tare their weight check adds.
CREATE TABLE box_types (
    id         INTEGER PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    tare_grams INTEGER NOT NULL CHECK (tare_grams >= 0),
    active     BOOLEAN NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Waybill numbers handed out from a carrier's allotted range, one at a time,
-- inside the pack transaction: no number twice, none skipped on success.
CREATE TABLE waybill_ranges (
    name    TEXT PRIMARY KEY,
    prefix  TEXT NOT NULL,
    next_no INTEGER NOT NULL CHECK (next_no >= 0),
    last_no INTEGER NOT NULL CHECK (last_no >= 0),
    width   INTEGER NOT NULL CHECK (width BETWEEN 1 AND 18),
    CHECK (next_no <= last_no + 1)
);

-- One parcel per order. A parcel whose weight did not match stays in state
-- 'mismatch' (no waybill, no label) until it is weighed again and matches,
-- or a manager overrides it with a reason.
CREATE TABLE packages (
    id              INTEGER PRIMARY KEY,
    package_no      TEXT NOT NULL UNIQUE,
    order_id        INTEGER NOT NULL UNIQUE REFERENCES orders(id),
    state           TEXT NOT NULL CHECK (state IN ('mismatch', 'packed')),
    station         TEXT NOT NULL,
    packer          TEXT NOT NULL,
    box_code        TEXT NOT NULL,
    tare_grams      INTEGER NOT NULL CHECK (tare_grams >= 0),
    expected_grams  INTEGER NOT NULL CHECK (expected_grams >= 0),
    gross_grams     INTEGER NOT NULL,
    allowed_grams   INTEGER NOT NULL CHECK (allowed_grams >= 0),
    weighed_at      TEXT NOT NULL,
    waybill_no      TEXT UNIQUE,
    override_by     TEXT,
    override_reason TEXT,
    created_at      TEXT NOT NULL,
    packed_at       TEXT,
    CHECK (state <> 'packed' OR (waybill_no IS NOT NULL AND packed_at IS NOT NULL)),
    CHECK ((override_by IS NULL) = (override_reason IS NULL))
);
CREATE INDEX packages_station ON packages(station, id);

-- Every weight refusal, kept for the exception list even after the parcel
-- was re-weighed or overridden.
CREATE TABLE pack_exceptions (
    id             INTEGER PRIMARY KEY,
    package_id     INTEGER NOT NULL REFERENCES packages(id),
    kind           TEXT NOT NULL CHECK (kind IN ('weight_mismatch')),
    expected_grams INTEGER NOT NULL,
    gross_grams    INTEGER NOT NULL,
    allowed_grams  INTEGER NOT NULL,
    station        TEXT NOT NULL,
    packer         TEXT NOT NULL,
    at             TEXT NOT NULL,
    resolution     TEXT CHECK (resolution IN ('reweighed', 'override', 'cancelled')),
    resolved_by    TEXT,
    resolved_at    TEXT
);
CREATE INDEX pack_exceptions_open ON pack_exceptions(id) WHERE resolution IS NULL;

-- The label print queue (an outbox: jobs are written in the same
-- transaction as the package and printed by a worker, so a printer that is
-- off loses nothing). A job is printed when the printer answered a status
-- request sent after its last byte.
CREATE TABLE print_jobs (
    id           INTEGER PRIMARY KEY,
    station      TEXT NOT NULL,
    package_id   INTEGER NOT NULL REFERENCES packages(id),
    copy         INTEGER NOT NULL CHECK (copy >= 1),
    label        TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'printed', 'cancelled')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    requested_by TEXT NOT NULL,
    reason       TEXT,
    created_at   TEXT NOT NULL,
    printed_at   TEXT,
    UNIQUE (package_id, copy)
);
CREATE INDEX print_jobs_queue ON print_jobs(station, id) WHERE state = 'queued';

-- Where each pack station's scanner stands (tote, items, box): one row per
-- station, replaced by every scan; `seq` is the scanner's last sequence
-- number and `answer` what it was told, so a repeated scan gets the same
-- answer and does nothing twice.
CREATE TABLE pack_sessions (
    station    TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    state      TEXT NOT NULL,
    answer     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
