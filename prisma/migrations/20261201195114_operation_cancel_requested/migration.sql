-- When the user asked to cancel the operation (issue 7): shown at once, before the workflow reacts.
ALTER TABLE "Operation" ADD COLUMN "cancelRequestedAt" TIMESTAMP(3);
