-- The gate output (PROTOCOLS.md §4): an open decision is only a grant until
-- the gate's output confirms the pulse. The twin of this file is in the
-- other backend's folder: keep them in step.
--
-- `output` follows an open decision: 'pending' while the pulse is under way,
-- 'confirmed' when the output read it back (the parcel's stock is shipped in
-- that same commit), 'fault' when it did not (nothing shipped; the parcel may
-- be scanned again). A refusal has no output. SQLite cannot change a CHECK or
-- a partial index in place, so the table is rebuilt.
CREATE TABLE gate_decisions_new (
    id                  INTEGER PRIMARY KEY,
    gate                TEXT NOT NULL,
    code                TEXT NOT NULL,
    package_id          INTEGER REFERENCES packages(id),
    order_id            INTEGER REFERENCES orders(id),
    decision            TEXT NOT NULL CHECK (decision IN ('open', 'refuse')),
    reason_code         TEXT NOT NULL,
    reason_en           TEXT NOT NULL,
    reason_zh           TEXT NOT NULL,
    evidence_receipt_id INTEGER REFERENCES customs_receipts(id),
    decided_by          TEXT NOT NULL,
    decided_at          TEXT NOT NULL,
    -- Who asked: `mqtt/{gate}/{seq}` for a scanner on MQTT, so a replayed
    -- scan gets the stored decision back instead of a second one.
    scan_key            TEXT UNIQUE,
    output              TEXT CHECK (output IN ('pending', 'confirmed', 'fault')),
    output_kind         TEXT,
    command_id          TEXT UNIQUE,
    expires_at          TEXT,
    output_detail       TEXT,
    output_at           TEXT,
    CHECK (decision <> 'open' OR (package_id IS NOT NULL AND evidence_receipt_id IS NOT NULL)),
    CHECK ((decision = 'open') = (output IS NOT NULL)),
    CHECK (output IS NULL OR (command_id IS NOT NULL AND expires_at IS NOT NULL))
);
-- Decisions made before the output existed shipped when they were made.
INSERT INTO gate_decisions_new (id, gate, code, package_id, order_id, decision, reason_code, reason_en,
        reason_zh, evidence_receipt_id, decided_by, decided_at, output, output_kind, command_id, expires_at,
        output_detail, output_at)
    SELECT id, gate, code, package_id, order_id, decision, reason_code, reason_en, reason_zh,
        evidence_receipt_id, decided_by, decided_at,
        CASE decision WHEN 'open' THEN 'confirmed' END,
        CASE decision WHEN 'open' THEN 'none' END,
        CASE decision WHEN 'open' THEN 'legacy-' || id END,
        CASE decision WHEN 'open' THEN decided_at END,
        CASE decision WHEN 'open' THEN 'decided before gate outputs were driven' END,
        CASE decision WHEN 'open' THEN decided_at END
    FROM gate_decisions;
DROP TABLE gate_decisions;
ALTER TABLE gate_decisions_new RENAME TO gate_decisions;
-- A parcel exits once: at most one open that has not failed.
CREATE UNIQUE INDEX gate_decisions_one_exit ON gate_decisions(package_id)
    WHERE decision = 'open' AND output <> 'fault';
CREATE INDEX gate_decisions_gate ON gate_decisions(gate, id);
CREATE INDEX gate_decisions_pending ON gate_decisions(expires_at) WHERE output = 'pending';

-- Every state a gate output reported (an MQTT bridge's `gate/{gate}/state`,
-- a relay's read-back), whether or not a decision was waiting for it.
CREATE TABLE gate_events (
    id          INTEGER PRIMARY KEY,
    gate        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'closed', 'fault')),
    source      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX gate_events_gate ON gate_events(gate, seq);
