-- When each order entered its current state, so the manager's dashboard can
-- show how long orders have waited at each stage of the pipeline. Set by
-- every statement that changes `orders.state`. Orders from before this
-- migration count from their creation (or cancellation). The SQLite
-- twin is migrations/sqlite/0010_order_state_at.sql: keep them in step.
ALTER TABLE orders ADD COLUMN state_at TIMESTAMPTZ;
UPDATE orders SET state_at = COALESCE(cancelled_at, created_at);
CREATE INDEX orders_state_at ON orders(state, state_at);
-- Parcels weighed and gate exits confirmed, per hour (the throughput chart).
CREATE INDEX IF NOT EXISTS packages_packed_at ON packages(packed_at);
CREATE INDEX IF NOT EXISTS pick_tasks_updated_at ON pick_tasks(state, updated_at);
CREATE INDEX IF NOT EXISTS gate_decisions_exits ON gate_decisions(output_at) WHERE output = 'confirmed';
CREATE INDEX IF NOT EXISTS gate_decisions_decided ON gate_decisions(decided_at);
CREATE INDEX IF NOT EXISTS orders_cancel_recent ON orders(cancelled_at) WHERE state = 'cancelled';
