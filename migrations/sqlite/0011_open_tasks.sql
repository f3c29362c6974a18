-- The open tasks in the order a picker's PDA claims them (oldest wave, then
-- order): without it every claim read and sorted all open tasks, thousands
-- on a busy morning, once for each order a picker starts. The PostgreSQL
-- twin is migrations/postgres/0011_open_tasks.sql: keep them in step.
CREATE INDEX pick_tasks_open ON pick_tasks(wave_id, order_id) WHERE state = 'open' AND picker_id IS NULL;
