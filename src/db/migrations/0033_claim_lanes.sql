-- Processing runs in two lanes, one pg-boss queue each (src/infra/queue/pg-boss.ts LANE_QUEUES):
-- a claim remembers its job's lane, so that the reaper can fail the job of a dead worker back into
-- the right queue. Claims made before the lanes existed were all in the single queue, which is the
-- image lane's.
ALTER TABLE processing_claims ADD COLUMN lane text NOT NULL DEFAULT 'image'
  CHECK (lane IN ('image', 'video'));
