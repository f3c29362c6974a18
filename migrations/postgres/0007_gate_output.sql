-- The gate output (PROTOCOLS.md §4): an open decision is only a grant until
-- the gate's output confirms the pulse. The twin of this file is in the
-- other backend's folder: keep them in step.
--
-- `output` follows an open decision: 'pending' while the pulse is under way,
-- 'confirmed' when the output read it back (the parcel's stock is shipped in
-- that same commit), 'fault' when it did not (nothing shipped; the parcel may
-- be scanned again). A refusal has no output.
ALTER TABLE gate_decisions
    -- Who asked: `mqtt/{gate}/{seq}` for a scanner on MQTT, so a replayed
    -- scan gets the stored decision back instead of a second one.
    ADD COLUMN scan_key      TEXT UNIQUE,
    ADD COLUMN output        TEXT CHECK (output IN ('pending', 'confirmed', 'fault')),
    ADD COLUMN output_kind   TEXT,
    ADD COLUMN command_id    TEXT UNIQUE,
    ADD COLUMN expires_at    TIMESTAMPTZ,
    ADD COLUMN output_detail TEXT,
    ADD COLUMN output_at     TIMESTAMPTZ;
-- Decisions made before the output existed shipped when they were made.
UPDATE gate_decisions SET output = 'confirmed', output_kind = 'none', command_id = 'legacy-' || id,
    expires_at = decided_at, output_detail = 'decided before gate outputs were driven', output_at = decided_at
    WHERE decision = 'open';
ALTER TABLE gate_decisions
    ADD CHECK ((decision = 'open') = (output IS NOT NULL)),
    ADD CHECK (output IS NULL OR (command_id IS NOT NULL AND expires_at IS NOT NULL));
-- A parcel exits once: at most one open that has not failed.
DROP INDEX gate_decisions_one_exit;
CREATE UNIQUE INDEX gate_decisions_one_exit ON gate_decisions(package_id)
    WHERE decision = 'open' AND output <> 'fault';
CREATE INDEX gate_decisions_pending ON gate_decisions(expires_at) WHERE output = 'pending';

-- Every state a gate output reported (an MQTT bridge's `gate/{gate}/state`,
-- a relay's read-back), whether or not a decision was waiting for it.
CREATE TABLE gate_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gate        TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'closed', 'fault')),
    source      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX gate_events_gate ON gate_events(gate, seq);
