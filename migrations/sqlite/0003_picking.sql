-- Picking: waves, pick tasks, totes, PDA sessions, count requests, devices.
-- The PostgreSQL twin is migrations/postgres/0003_picking.sql: keep them in step.

-- Picked goods move from the bin into a tote with a new movement kind,
-- `pick`. SQLite cannot alter a CHECK constraint, so the movements table is
-- rebuilt with the wider check (nothing references it; its rows are copied
-- as they are and its indexes and triggers are created again).
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
        (kind = 'pick'     AND from_bucket IS NULL AND to_bucket = 'locked')
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

ALTER TABLE users ADD COLUMN badge TEXT;
CREATE UNIQUE INDEX users_badge ON users(badge);

CREATE TABLE waves (
    id         INTEGER PRIMARY KEY,
    wave_no    TEXT NOT NULL UNIQUE,
    origin     TEXT NOT NULL CHECK (origin IN ('manual', 'auto')),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

ALTER TABLE orders ADD COLUMN wave_id INTEGER REFERENCES waves(id);
-- The tote the order is picked into (a location of kind 'pack').
ALTER TABLE orders ADD COLUMN tote TEXT;
ALTER TABLE orders ADD COLUMN exception_reason TEXT;
CREATE INDEX orders_tote ON orders(tote);

-- One task per reservation: pick `qty` of one lot from one bin.
CREATE TABLE pick_tasks (
    id           INTEGER PRIMARY KEY,
    wave_id      INTEGER NOT NULL REFERENCES waves(id),
    order_id     INTEGER NOT NULL REFERENCES orders(id),
    line_no      INTEGER NOT NULL,
    lock_id      INTEGER NOT NULL UNIQUE REFERENCES locks(id),
    sku_id       INTEGER NOT NULL REFERENCES skus(id),
    location_id  INTEGER NOT NULL REFERENCES locations(id),
    lot_id       INTEGER NOT NULL REFERENCES lots(id),
    walk_seq     INTEGER NOT NULL,
    qty          INTEGER NOT NULL CHECK (qty > 0),
    picked_qty   INTEGER NOT NULL DEFAULT 0 CHECK (picked_qty >= 0),
    short_qty    INTEGER NOT NULL DEFAULT 0 CHECK (short_qty >= 0),
    short_reason TEXT CHECK (short_reason IN ('empty', 'damaged', 'wrong')),
    state        TEXT NOT NULL CHECK (state IN ('open', 'assigned', 'in_progress', 'picked', 'short', 'cancelled')),
    picker_id    INTEGER REFERENCES users(id),
    tote         TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    CHECK (picked_qty + short_qty <= qty),
    CHECK (state <> 'picked' OR picked_qty = qty),
    CHECK (state <> 'short' OR (short_qty > 0 AND short_reason IS NOT NULL))
);
CREATE INDEX pick_tasks_order ON pick_tasks(order_id);
CREATE INDEX pick_tasks_wave ON pick_tasks(wave_id);
CREATE INDEX pick_tasks_picker ON pick_tasks(picker_id, state);
CREATE INDEX pick_tasks_state ON pick_tasks(state, id);

-- A bin whose count disagreed with a picker: FEFO takes nothing of that SKU
-- from it until a cycle count closes the request.
CREATE TABLE count_requests (
    id          INTEGER PRIMARY KEY,
    sku_id      INTEGER NOT NULL REFERENCES skus(id),
    location_id INTEGER NOT NULL REFERENCES locations(id),
    task_id     INTEGER REFERENCES pick_tasks(id),
    reason      TEXT NOT NULL,
    raised_by   TEXT NOT NULL,
    raised_at   TEXT NOT NULL,
    count_id    INTEGER REFERENCES counts(id),
    closed_at   TEXT
);
CREATE INDEX count_requests_open ON count_requests(sku_id, location_id) WHERE closed_at IS NULL;

-- Where each PDA's picker stands. Scans and their answers are kept in
-- `operations` (scope 'pda', key '<device>:<seq>'), so a replay gets the
-- original answer.
CREATE TABLE pda_sessions (
    device     TEXT PRIMARY KEY,
    user_id    INTEGER REFERENCES users(id),
    step       TEXT NOT NULL,
    task_id    INTEGER REFERENCES pick_tasks(id),
    updated_at TEXT NOT NULL
);

-- Devices seen on the broker, from their retained status and last will.
CREATE TABLE devices (
    site       TEXT NOT NULL,
    device     TEXT NOT NULL,
    online     BOOLEAN NOT NULL,
    changed_at TEXT NOT NULL,
    PRIMARY KEY (site, device)
);
