-- The outbound vehicle manifest (CUSTOMS.md §3): parcels that have left
-- through the warehouse gate, loaded onto one vehicle; what the outbound
-- 核注清单 and the 核放单 are built from. The SQLite twin is
-- migrations/sqlite/0009_manifest.sql: keep them in step.
CREATE TABLE vehicle_manifests (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    manifest_no TEXT NOT NULL UNIQUE,
    -- Normalised by domain::manifest::Plate (浙A12345, 浙AD12345).
    plate       TEXT NOT NULL,
    -- The customs seal (关锁号); may be given at creation or at closing.
    seal_no     TEXT,
    state       TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    closed_by   TEXT,
    closed_at   TIMESTAMPTZ,
    CHECK ((state = 'closed') = (closed_at IS NOT NULL AND closed_by IS NOT NULL)),
    CHECK (state = 'open' OR seal_no IS NOT NULL)
);
CREATE INDEX vehicle_manifests_state ON vehicle_manifests(state, id);

-- A parcel is on one manifest only (unique package_id).
CREATE TABLE manifest_parcels (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    manifest_id BIGINT NOT NULL REFERENCES vehicle_manifests(id),
    package_id  BIGINT NOT NULL UNIQUE REFERENCES packages(id),
    added_by    TEXT NOT NULL,
    added_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX manifest_parcels_manifest ON manifest_parcels(manifest_id, id);

-- A closed manifest is what the vehicle left with: nothing about it
-- changes again, whatever writes to the database.
CREATE FUNCTION vehicle_manifests_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'closed' THEN
        RAISE EXCEPTION 'a closed vehicle manifest cannot change';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER vehicle_manifests_closed BEFORE UPDATE OR DELETE ON vehicle_manifests
    FOR EACH ROW EXECUTE FUNCTION vehicle_manifests_closed();

CREATE FUNCTION manifest_parcels_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    m BIGINT;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'a manifest line is removed and added, never changed';
    END IF;
    IF TG_OP = 'DELETE' THEN
        m := OLD.manifest_id;
    ELSE
        m := NEW.manifest_id;
    END IF;
    -- FOR SHARE: a close committing meanwhile is waited for, not missed.
    IF (SELECT state FROM vehicle_manifests WHERE id = m FOR SHARE) = 'closed' THEN
        RAISE EXCEPTION 'a closed vehicle manifest cannot change';
    END IF;
    -- Only a parcel that left through the gate (an open whose output was
    -- confirmed, 0007) goes on a vehicle.
    IF TG_OP = 'INSERT' AND NOT EXISTS (SELECT 1 FROM gate_decisions d WHERE d.package_id = NEW.package_id
            AND d.decision = 'open' AND d.output = 'confirmed') THEN
        RAISE EXCEPTION 'only a parcel that exited through the gate goes on a vehicle manifest';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER manifest_parcels_guard BEFORE INSERT OR UPDATE OR DELETE ON manifest_parcels
    FOR EACH ROW EXECUTE FUNCTION manifest_parcels_guard();
