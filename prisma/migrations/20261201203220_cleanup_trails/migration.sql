-- Undo trails (issue 8): a resource whose undo or delete failed keeps every reference to what is
-- left and shows it in an ERROR state with a `cleanup` description, until a repeated DELETE or the
-- host sweep finishes the job.
ALTER TYPE "VmState" ADD VALUE 'ERROR';
ALTER TYPE "VolumeState" ADD VALUE 'ERROR';
ALTER TYPE "ImageStatus" ADD VALUE 'ERROR';

ALTER TABLE "Vm" ADD COLUMN "cleanup" JSONB;
ALTER TABLE "Volume" ADD COLUMN "cleanup" JSONB;
ALTER TABLE "Image" ADD COLUMN "cleanup" JSONB;
