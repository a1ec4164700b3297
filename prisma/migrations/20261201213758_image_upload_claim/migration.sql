-- One upload per image (issue 13): the claim of the PUT that holds its content, and its lease.
ALTER TABLE "Image" ADD COLUMN "uploadClaim" TEXT;
ALTER TABLE "Image" ADD COLUMN "uploadClaimedAt" TIMESTAMP(3);
