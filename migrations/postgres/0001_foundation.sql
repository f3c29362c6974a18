-- bondgate foundation schema for PostgreSQL.
-- The SQLite twin is migrations/sqlite/0001_foundation.sql: keep them in step.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL,            -- comma-separated role names
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,            -- SHA-256 of the bearer token; the token itself is never stored
    user_id    BIGINT NOT NULL REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);

CREATE TABLE skus (
    id                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                   TEXT NOT NULL UNIQUE,
    name                   TEXT NOT NULL,
    hs_code                TEXT,
    customs_item_record_no TEXT,
    ledger_item_no         TEXT,
    unit_weight_grams      BIGINT NOT NULL CHECK (unit_weight_grams >= 0),
    shelf_life_days        BIGINT CHECK (shelf_life_days IS NULL OR shelf_life_days > 0),
    origin_country         TEXT,
    record_status          TEXT NOT NULL CHECK (record_status IN ('active', 'revoked')),
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);

CREATE TABLE sku_barcodes (
    barcode TEXT PRIMARY KEY,
    sku_id  BIGINT NOT NULL REFERENCES skus(id)
);
CREATE INDEX sku_barcodes_sku ON sku_barcodes(sku_id);

CREATE TABLE locations (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    zone       TEXT NOT NULL,
    walk_seq   BIGINT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('storage', 'pick', 'pack', 'inspection', 'quarantine', 'defective', 'dock')),
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE lots (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku_id BIGINT NOT NULL REFERENCES skus(id),
    batch  TEXT NOT NULL,
    expiry DATE,
    UNIQUE (sku_id, batch)
);

-- One row per idempotent operation: the caller's document number and what we answered.
CREATE TABLE operations (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT,
    actor        TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    UNIQUE (scope, key)
);

CREATE TABLE holdings (
    sku_id      BIGINT NOT NULL REFERENCES skus(id),
    location_id BIGINT NOT NULL REFERENCES locations(id),
    lot_id      BIGINT NOT NULL REFERENCES lots(id),
    available   BIGINT NOT NULL DEFAULT 0 CHECK (available >= 0),
    locked      BIGINT NOT NULL DEFAULT 0 CHECK (locked >= 0),
    defective   BIGINT NOT NULL DEFAULT 0 CHECK (defective >= 0),
    PRIMARY KEY (sku_id, location_id, lot_id)
);
CREATE INDEX holdings_location ON holdings(location_id);

CREATE TABLE locks (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation_id BIGINT NOT NULL REFERENCES operations(id),
    reference    TEXT NOT NULL,
    sku_id       BIGINT NOT NULL REFERENCES skus(id),
    location_id  BIGINT NOT NULL REFERENCES locations(id),
    lot_id       BIGINT NOT NULL REFERENCES lots(id),
    qty          BIGINT NOT NULL CHECK (qty >= 0),
    state        TEXT NOT NULL CHECK (state IN ('held', 'shipped', 'released')),
    created_at   TIMESTAMPTZ NOT NULL,
    closed_at    TIMESTAMPTZ
);
CREATE INDEX locks_reference ON locks(reference);
CREATE INDEX locks_held ON locks(sku_id, location_id, lot_id) WHERE state = 'held';

CREATE TABLE movements (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation_id   BIGINT REFERENCES operations(id),
    kind           TEXT NOT NULL,
    sku_id         BIGINT NOT NULL REFERENCES skus(id),
    location_id    BIGINT NOT NULL REFERENCES locations(id),
    lot_id         BIGINT NOT NULL REFERENCES lots(id),
    qty            BIGINT NOT NULL CHECK (qty > 0),
    from_bucket    TEXT,
    to_bucket      TEXT,
    doc_type       TEXT NOT NULL,
    doc_no         TEXT NOT NULL,
    customs_doc_no TEXT,
    reason         TEXT,
    actor          TEXT NOT NULL,
    approver       TEXT,
    lock_id        BIGINT REFERENCES locks(id),
    at             TIMESTAMPTZ NOT NULL,
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
CREATE FUNCTION movements_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO holdings (sku_id, location_id, lot_id) VALUES (NEW.sku_id, NEW.location_id, NEW.lot_id)
        ON CONFLICT DO NOTHING;
    UPDATE holdings SET
        available = available + (CASE WHEN NEW.to_bucket = 'available' THEN NEW.qty ELSE 0 END)
                              - (CASE WHEN NEW.from_bucket = 'available' THEN NEW.qty ELSE 0 END),
        locked    = locked    + (CASE WHEN NEW.to_bucket = 'locked' THEN NEW.qty ELSE 0 END)
                              - (CASE WHEN NEW.from_bucket = 'locked' THEN NEW.qty ELSE 0 END),
        defective = defective + (CASE WHEN NEW.to_bucket = 'defective' THEN NEW.qty ELSE 0 END)
                              - (CASE WHEN NEW.from_bucket = 'defective' THEN NEW.qty ELSE 0 END)
    WHERE sku_id = NEW.sku_id AND location_id = NEW.location_id AND lot_id = NEW.lot_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER movements_apply AFTER INSERT ON movements FOR EACH ROW EXECUTE FUNCTION movements_apply();

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the % is append-only', TG_ARGV[0];
END
$$;
CREATE TRIGGER movements_append_only BEFORE UPDATE OR DELETE ON movements
    FOR EACH ROW EXECUTE FUNCTION refuse_change('movement ledger');
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change('audit log');

CREATE TABLE receipts (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receipt_no     TEXT NOT NULL UNIQUE,
    customs_doc_no TEXT NOT NULL,
    supplier       TEXT,
    actor          TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL
);

CREATE TABLE counts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    count_no    TEXT NOT NULL UNIQUE,
    location_id BIGINT NOT NULL REFERENCES locations(id),
    actor       TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE adjustments (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    sku_id       BIGINT NOT NULL REFERENCES skus(id),
    location_id  BIGINT NOT NULL REFERENCES locations(id),
    lot_id       BIGINT NOT NULL REFERENCES lots(id),
    bucket       TEXT NOT NULL CHECK (bucket IN ('available', 'defective')),
    delta        BIGINT NOT NULL CHECK (delta <> 0),
    reason       TEXT NOT NULL,
    count_id     BIGINT REFERENCES counts(id),
    state        TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    decided_by   TEXT,
    decided_at   TIMESTAMPTZ
);
CREATE INDEX adjustments_state ON adjustments(state);
