-- Packing: parcels, box types, waybill ranges, weight exceptions, the
-- label print queue, and the `pack` movement (tote -> station outbound).
-- The SQLite twin is migrations/sqlite/0004_packing.sql: keep them in step.

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
        (kind = 'pack'     AND from_bucket IS NULL AND to_bucket = 'locked')
);

-- Box types the pack stations use, with the tare their weight check adds.
CREATE TABLE box_types (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    tare_grams BIGINT NOT NULL CHECK (tare_grams >= 0),
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Waybill numbers handed out from a carrier's allotted range, one at a time,
-- inside the pack transaction: no number twice, none skipped on success.
CREATE TABLE waybill_ranges (
    name    TEXT PRIMARY KEY,
    prefix  TEXT NOT NULL,
    next_no BIGINT NOT NULL CHECK (next_no >= 0),
    last_no BIGINT NOT NULL CHECK (last_no >= 0),
    width   BIGINT NOT NULL CHECK (width BETWEEN 1 AND 18),
    CHECK (next_no <= last_no + 1)
);

-- One parcel per order. A parcel whose weight did not match stays in state
-- 'mismatch' (no waybill, no label) until it is weighed again and matches,
-- or a manager overrides it with a reason.
CREATE TABLE packages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    package_no      TEXT NOT NULL UNIQUE,
    order_id        BIGINT NOT NULL UNIQUE REFERENCES orders(id),
    state           TEXT NOT NULL CHECK (state IN ('mismatch', 'packed')),
    station         TEXT NOT NULL,
    packer          TEXT NOT NULL,
    box_code        TEXT NOT NULL,
    tare_grams      BIGINT NOT NULL CHECK (tare_grams >= 0),
    expected_grams  BIGINT NOT NULL CHECK (expected_grams >= 0),
    gross_grams     BIGINT NOT NULL,
    allowed_grams   BIGINT NOT NULL CHECK (allowed_grams >= 0),
    weighed_at      TIMESTAMPTZ NOT NULL,
    waybill_no      TEXT UNIQUE,
    override_by     TEXT,
    override_reason TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    packed_at       TIMESTAMPTZ,
    CHECK (state <> 'packed' OR (waybill_no IS NOT NULL AND packed_at IS NOT NULL)),
    CHECK ((override_by IS NULL) = (override_reason IS NULL))
);
CREATE INDEX packages_station ON packages(station, id);

-- Every weight refusal, kept for the exception list even after the parcel
-- was re-weighed or overridden.
CREATE TABLE pack_exceptions (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    package_id     BIGINT NOT NULL REFERENCES packages(id),
    kind           TEXT NOT NULL CHECK (kind IN ('weight_mismatch')),
    expected_grams BIGINT NOT NULL,
    gross_grams    BIGINT NOT NULL,
    allowed_grams  BIGINT NOT NULL,
    station        TEXT NOT NULL,
    packer         TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    resolution     TEXT CHECK (resolution IN ('reweighed', 'override', 'cancelled')),
    resolved_by    TEXT,
    resolved_at    TIMESTAMPTZ
);
CREATE INDEX pack_exceptions_open ON pack_exceptions(id) WHERE resolution IS NULL;

-- The label print queue (an outbox: jobs are written in the same
-- transaction as the package and printed by a worker, so a printer that is
-- off loses nothing). A job is printed when the printer answered a status
-- request sent after its last byte.
CREATE TABLE print_jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    station      TEXT NOT NULL,
    package_id   BIGINT NOT NULL REFERENCES packages(id),
    copy         BIGINT NOT NULL CHECK (copy >= 1),
    label        TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'printed', 'cancelled')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    requested_by TEXT NOT NULL,
    reason       TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    printed_at   TIMESTAMPTZ,
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
    updated_at TIMESTAMPTZ NOT NULL
);
