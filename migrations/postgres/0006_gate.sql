-- The outbound gate's decisions (DESIGN §4 "Gate decision"). The twin of
-- this file is in the other backend's folder: keep them in step.

-- Every scan at a gate and what was decided, with its evidence: an open
-- names the release receipt it rested on. A parcel exits once: the unique
-- index refuses a second open even if every check above it failed.
CREATE TABLE gate_decisions (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gate                TEXT NOT NULL,
    code                TEXT NOT NULL,
    package_id          BIGINT REFERENCES packages(id),
    order_id            BIGINT REFERENCES orders(id),
    decision            TEXT NOT NULL CHECK (decision IN ('open', 'refuse')),
    reason_code         TEXT NOT NULL,
    reason_en           TEXT NOT NULL,
    reason_zh           TEXT NOT NULL,
    evidence_receipt_id BIGINT REFERENCES customs_receipts(id),
    decided_by          TEXT NOT NULL,
    decided_at          TIMESTAMPTZ NOT NULL,
    CHECK (decision <> 'open' OR (package_id IS NOT NULL AND evidence_receipt_id IS NOT NULL))
);
CREATE UNIQUE INDEX gate_decisions_one_exit ON gate_decisions(package_id) WHERE decision = 'open';
CREATE INDEX gate_decisions_gate ON gate_decisions(gate, id);
