-- bondgate foundation schema for SQLite (embedded default).
-- The PostgreSQL twin is migrations/postgres/0001_foundation.sql: keep them in step.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL,            -- comma-separated role names
    active        BOOLEAN NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,            -- SHA-256 of the bearer token; the token itself is never stored
    user_id    INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);

CREATE TABLE skus (
    id                     INTEGER PRIMARY KEY,
    code                   TEXT NOT NULL UNIQUE,
    name                   TEXT NOT NULL,
    hs_code                TEXT,
    customs_item_record_no TEXT,
    ledger_item_no         TEXT,
    unit_weight_grams      INTEGER NOT NULL CHECK (unit_weight_grams >= 0),
    shelf_life_days        INTEGER CHECK (shelf_life_days IS NULL OR shelf_life_days > 0),
    origin_country         TEXT,
    record_status          TEXT NOT NULL CHECK (record_status IN ('active', 'revoked')),
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);

CREATE TABLE sku_barcodes (
    barcode TEXT PRIMARY KEY,
    sku_id  INTEGER NOT NULL REFERENCES skus(id)
);
CREATE INDEX sku_barcodes_sku ON sku_barcodes(sku_id);

CREATE TABLE locations (
    id         INTEGER PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    zone       TEXT NOT NULL,
    walk_seq   INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('storage', 'pick', 'pack', 'inspection', 'quarantine', 'defective', 'dock')),
    active     BOOLEAN NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE lots (
    id     INTEGER PRIMARY KEY,
    sku_id INTEGER NOT NULL REFERENCES skus(id),
    batch  TEXT NOT NULL,
    expiry TEXT,
    UNIQUE (sku_id, batch)
);

-- One row per idempotent operation: the caller's document number and what we answered.
CREATE TABLE operations (
    id           INTEGER PRIMARY KEY,
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT,
    actor        TEXT NOT NULL,
    at           TEXT NOT NULL,
    UNIQUE (scope, key)
);

CREATE TABLE holdings (
    sku_id      INTEGER NOT NULL REFERENCES skus(id),
    location_id INTEGER NOT NULL REFERENCES locations(id),
    lot_id      INTEGER NOT NULL REFERENCES lots(id),
    available   INTEGER NOT NULL DEFAULT 0 CHECK (available >= 0),
    locked      INTEGER NOT NULL DEFAULT 0 CHECK (locked >= 0),
    defective   INTEGER NOT NULL DEFAULT 0 CHECK (defective >= 0),
    PRIMARY KEY (sku_id, location_id, lot_id)
);
CREATE INDEX holdings_location ON holdings(location_id);

CREATE TABLE locks (
    id           INTEGER PRIMARY KEY,
    operation_id INTEGER NOT NULL REFERENCES operations(id),
    reference    TEXT NOT NULL,
    sku_id       INTEGER NOT NULL REFERENCES skus(id),
    location_id  INTEGER NOT NULL REFERENCES locations(id),
    lot_id       INTEGER NOT NULL REFERENCES lots(id),
    qty          INTEGER NOT NULL CHECK (qty >= 0),
    state        TEXT NOT NULL CHECK (state IN ('held', 'shipped', 'released')),
    created_at   TEXT NOT NULL,
    closed_at    TEXT
);
CREATE INDEX locks_reference ON locks(reference);
CREATE INDEX locks_held ON locks(sku_id, location_id, lot_id) WHERE state = 'held';

CREATE TABLE movements (
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
        (kind = 'transfer' AND from_bucket IS NULL AND to_bucket = 'available')
    )
);
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
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE receipts (
    id             INTEGER PRIMARY KEY,
    receipt_no     TEXT NOT NULL UNIQUE,
    customs_doc_no TEXT NOT NULL,
    supplier       TEXT,
    actor          TEXT NOT NULL,
    at             TEXT NOT NULL
);

CREATE TABLE counts (
    id          INTEGER PRIMARY KEY,
    count_no    TEXT NOT NULL UNIQUE,
    location_id INTEGER NOT NULL REFERENCES locations(id),
    actor       TEXT NOT NULL,
    at          TEXT NOT NULL
);

CREATE TABLE adjustments (
    id           INTEGER PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    sku_id       INTEGER NOT NULL REFERENCES skus(id),
    location_id  INTEGER NOT NULL REFERENCES locations(id),
    lot_id       INTEGER NOT NULL REFERENCES lots(id),
    bucket       TEXT NOT NULL CHECK (bucket IN ('available', 'defective')),
    delta        INTEGER NOT NULL CHECK (delta <> 0),
    reason       TEXT NOT NULL,
    count_id     INTEGER REFERENCES counts(id),
    state        TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    decided_by   TEXT,
    decided_at   TEXT
);
CREATE INDEX adjustments_state ON adjustments(state);
