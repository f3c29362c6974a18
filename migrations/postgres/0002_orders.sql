-- Orders from the e-commerce platform, with the stock reserved for them.
-- The SQLite twin is migrations/sqlite/0002_orders.sql: keep them in step.
-- Money is integer fen; buyer ID numbers and phones are sealed (AES-GCM) and
-- indexed only by a keyed HMAC (buyer_ref).

CREATE TABLE orders (
    id                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_no               TEXT NOT NULL UNIQUE,
    state                  TEXT NOT NULL CHECK (state IN ('locked', 'picking', 'picked', 'packed', 'shipped', 'exception', 'cancelled')),
    trade_mode             TEXT NOT NULL CHECK (trade_mode IN ('1210', '9610')),
    ebp_code               TEXT NOT NULL,
    ebc_code               TEXT NOT NULL,
    cop_no                 TEXT NOT NULL,
    buyer_name             TEXT NOT NULL,
    buyer_id_sealed        TEXT NOT NULL,
    buyer_id_masked        TEXT NOT NULL,
    buyer_ref              TEXT NOT NULL,
    buyer_phone_sealed     TEXT NOT NULL,
    buyer_phone_masked     TEXT NOT NULL,
    consignee_name         TEXT NOT NULL,
    consignee_phone_sealed TEXT NOT NULL,
    consignee_phone_masked TEXT NOT NULL,
    consignee_address      TEXT NOT NULL,
    goods_value_fen        BIGINT NOT NULL CHECK (goods_value_fen >= 0),
    freight_fen            BIGINT NOT NULL CHECK (freight_fen >= 0),
    discount_fen           BIGINT NOT NULL CHECK (discount_fen >= 0),
    tax_fen                BIGINT NOT NULL CHECK (tax_fen >= 0),
    actual_paid_fen        BIGINT NOT NULL CHECK (actual_paid_fen >= 0),
    warnings               TEXT NOT NULL,
    created_by             TEXT NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    cancelled_at           TIMESTAMPTZ,
    cancel_reason          TEXT
);
CREATE INDEX orders_buyer_year ON orders(buyer_ref, created_at);
CREATE INDEX orders_state ON orders(state, id);
CREATE INDEX orders_cop_no ON orders(cop_no);

CREATE TABLE order_lines (
    order_id       BIGINT NOT NULL REFERENCES orders(id),
    line_no        BIGINT NOT NULL,
    sku_id         BIGINT NOT NULL REFERENCES skus(id),
    qty            BIGINT NOT NULL CHECK (qty > 0),
    unit_price_fen BIGINT NOT NULL CHECK (unit_price_fen >= 0),
    PRIMARY KEY (order_id, line_no)
);

-- Which reservations serve which order line.
CREATE TABLE order_allocations (
    lock_id  BIGINT PRIMARY KEY REFERENCES locks(id),
    order_id BIGINT NOT NULL REFERENCES orders(id),
    line_no  BIGINT NOT NULL
);
CREATE INDEX order_allocations_order ON order_allocations(order_id, line_no);

-- FEFO looks up a SKU's holdings with stock on every order.
CREATE INDEX holdings_sku_available ON holdings(sku_id) WHERE available > 0;
