-- The transactional outbox of operations (issue 7): what starting the workflow needs, committed with
-- the operation, when it was started, and when a sweeper took it to start it.
ALTER TABLE "Operation" ADD COLUMN "workflowType" TEXT;
ALTER TABLE "Operation" ADD COLUMN "workflowArgs" JSONB;
ALTER TABLE "Operation" ADD COLUMN "workflowSearchAttributes" JSONB;
ALTER TABLE "Operation" ADD COLUMN "workflowSummary" TEXT;
ALTER TABLE "Operation" ADD COLUMN "workflowStartedAt" TIMESTAMP(3);
ALTER TABLE "Operation" ADD COLUMN "outboxClaimedAt" TIMESTAMP(3);
-- For the sweeper: pending rows whose workflow was never marked started.
CREATE INDEX "Operation_outbox_idx" ON "Operation" ("createdAt") WHERE state = 'PENDING' AND "workflowStartedAt" IS NULL;
