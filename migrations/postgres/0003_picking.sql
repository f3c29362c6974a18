-- Picking: waves, pick tasks, totes, PDA sessions, count requests, devices.
-- The SQLite twin is migrations/sqlite/0003_picking.sql: keep them in step.

-- Picked goods move from the bin into a tote with a new movement kind, `pick`.
ALTER TABLE movements DROP CONSTRAINT movements_check;
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
        (kind = 'pick'     AND from_bucket IS NULL AND to_bucket = 'locked')
);

ALTER TABLE users ADD COLUMN badge TEXT;
CREATE UNIQUE INDEX users_badge ON users(badge);

CREATE TABLE waves (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wave_no    TEXT NOT NULL UNIQUE,
    origin     TEXT NOT NULL CHECK (origin IN ('manual', 'auto')),
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

ALTER TABLE orders ADD COLUMN wave_id BIGINT REFERENCES waves(id);
-- The tote the order is picked into (a location of kind 'pack').
ALTER TABLE orders ADD COLUMN tote TEXT;
ALTER TABLE orders ADD COLUMN exception_reason TEXT;
CREATE INDEX orders_tote ON orders(tote);

-- One task per reservation: pick `qty` of one lot from one bin.
CREATE TABLE pick_tasks (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wave_id      BIGINT NOT NULL REFERENCES waves(id),
    order_id     BIGINT NOT NULL REFERENCES orders(id),
    line_no      BIGINT NOT NULL,
    lock_id      BIGINT NOT NULL UNIQUE REFERENCES locks(id),
    sku_id       BIGINT NOT NULL REFERENCES skus(id),
    location_id  BIGINT NOT NULL REFERENCES locations(id),
    lot_id       BIGINT NOT NULL REFERENCES lots(id),
    walk_seq     BIGINT NOT NULL,
    qty          BIGINT NOT NULL CHECK (qty > 0),
    picked_qty   BIGINT NOT NULL DEFAULT 0 CHECK (picked_qty >= 0),
    short_qty    BIGINT NOT NULL DEFAULT 0 CHECK (short_qty >= 0),
    short_reason TEXT CHECK (short_reason IN ('empty', 'damaged', 'wrong')),
    state        TEXT NOT NULL CHECK (state IN ('open', 'assigned', 'in_progress', 'picked', 'short', 'cancelled')),
    picker_id    BIGINT REFERENCES users(id),
    tote         TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
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
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku_id      BIGINT NOT NULL REFERENCES skus(id),
    location_id BIGINT NOT NULL REFERENCES locations(id),
    task_id     BIGINT REFERENCES pick_tasks(id),
    reason      TEXT NOT NULL,
    raised_by   TEXT NOT NULL,
    raised_at   TIMESTAMPTZ NOT NULL,
    count_id    BIGINT REFERENCES counts(id),
    closed_at   TIMESTAMPTZ
);
CREATE INDEX count_requests_open ON count_requests(sku_id, location_id) WHERE closed_at IS NULL;

-- Where each PDA's picker stands. Scans and their answers are kept in
-- `operations` (scope 'pda', key '<device>:<seq>'), so a replay gets the
-- original answer.
CREATE TABLE pda_sessions (
    device     TEXT PRIMARY KEY,
    user_id    BIGINT REFERENCES users(id),
    step       TEXT NOT NULL,
    task_id    BIGINT REFERENCES pick_tasks(id),
    updated_at TIMESTAMPTZ NOT NULL
);

-- Devices seen on the broker, from their retained status and last will.
CREATE TABLE devices (
    site       TEXT NOT NULL,
    device     TEXT NOT NULL,
    online     BOOLEAN NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site, device)
);
