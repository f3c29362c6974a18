-- Customs receipts from the customs gateway (CUSTOMS.md). The twin of this
-- file is in the other backend's folder: keep them in step.

-- Each signed message as it arrived. The hash of its exact bytes is unique:
-- the same signed message again is a replay and is refused.
CREATE TABLE customs_messages (
    id          INTEGER PRIMARY KEY,
    body_sha256 TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('CEB622', 'CEB624', 'CEB900')),
    key_id      TEXT NOT NULL,
    guid        TEXT,
    received_by TEXT NOT NULL,
    received_at TEXT NOT NULL
);

-- Every receipt, kept for ever. The state of a 清单 is folded from its
-- receipts in returnTime order (17 digits, yyyyMMddHHmmssSSS: text order
-- is time order), never from the order they arrived in.
CREATE TABLE customs_receipts (
    id            INTEGER PRIMARY KEY,
    message_id    INTEGER NOT NULL REFERENCES customs_messages(id),
    kind          TEXT NOT NULL CHECK (kind IN ('inventory', 'cancellation', 'format_error')),
    cop_no        TEXT,
    pre_no        TEXT,
    invt_no       TEXT,
    guid          TEXT,
    return_status BIGINT NOT NULL,
    return_time   TEXT NOT NULL CHECK (length(return_time) = 17),
    return_info   TEXT,
    CHECK (kind = 'format_error' OR cop_no IS NOT NULL)
);
CREATE INDEX customs_receipts_cop ON customs_receipts(cop_no, return_time);
