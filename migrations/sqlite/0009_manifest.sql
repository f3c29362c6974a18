-- The outbound vehicle manifest (CUSTOMS.md §3): parcels that have left
-- through the warehouse gate, loaded onto one vehicle; what the outbound
-- 核注清单 and the 核放单 are built from. The PostgreSQL twin is
-- migrations/postgres/0009_manifest.sql: keep them in step.
CREATE TABLE vehicle_manifests (
    id          INTEGER PRIMARY KEY,
    manifest_no TEXT NOT NULL UNIQUE,
    -- Normalised by domain::manifest::Plate (浙A12345, 浙AD12345).
    plate       TEXT NOT NULL,
    -- The customs seal (关锁号); may be given at creation or at closing.
    seal_no     TEXT,
    state       TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    closed_by   TEXT,
    closed_at   TEXT,
    CHECK ((state = 'closed') = (closed_at IS NOT NULL AND closed_by IS NOT NULL)),
    CHECK (state = 'open' OR seal_no IS NOT NULL)
);
CREATE INDEX vehicle_manifests_state ON vehicle_manifests(state, id);

-- A parcel is on one manifest only (unique package_id).
CREATE TABLE manifest_parcels (
    id          INTEGER PRIMARY KEY,
    manifest_id INTEGER NOT NULL REFERENCES vehicle_manifests(id),
    package_id  INTEGER NOT NULL UNIQUE REFERENCES packages(id),
    added_by    TEXT NOT NULL,
    added_at    TEXT NOT NULL
);
CREATE INDEX manifest_parcels_manifest ON manifest_parcels(manifest_id, id);

-- A closed manifest is what the vehicle left with: nothing about it
-- changes again, whatever writes to the database.
CREATE TRIGGER vehicle_manifests_closed_update BEFORE UPDATE ON vehicle_manifests
WHEN OLD.state = 'closed'
BEGIN SELECT RAISE(ABORT, 'a closed vehicle manifest cannot change'); END;
CREATE TRIGGER vehicle_manifests_closed_delete BEFORE DELETE ON vehicle_manifests
WHEN OLD.state = 'closed'
BEGIN SELECT RAISE(ABORT, 'a closed vehicle manifest cannot change'); END;
CREATE TRIGGER manifest_parcels_closed_insert BEFORE INSERT ON manifest_parcels
WHEN (SELECT state FROM vehicle_manifests WHERE id = NEW.manifest_id) = 'closed'
BEGIN SELECT RAISE(ABORT, 'a closed vehicle manifest cannot change'); END;
CREATE TRIGGER manifest_parcels_closed_delete BEFORE DELETE ON manifest_parcels
WHEN (SELECT state FROM vehicle_manifests WHERE id = OLD.manifest_id) = 'closed'
BEGIN SELECT RAISE(ABORT, 'a closed vehicle manifest cannot change'); END;
CREATE TRIGGER manifest_parcels_no_update BEFORE UPDATE ON manifest_parcels
BEGIN SELECT RAISE(ABORT, 'a manifest line is removed and added, never changed'); END;
-- Only a parcel that left through the gate (an open whose output was
-- confirmed, 0007) goes on a vehicle.
CREATE TRIGGER manifest_parcels_exited BEFORE INSERT ON manifest_parcels
WHEN NOT EXISTS (SELECT 1 FROM gate_decisions d WHERE d.package_id = NEW.package_id
                 AND d.decision = 'open' AND d.output = 'confirmed')
BEGIN SELECT RAISE(ABORT, 'only a parcel that exited through the gate goes on a vehicle manifest'); END;
