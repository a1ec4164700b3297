-- A pool's thin-provisioning limit (issue 13): null is the control plane's default.
ALTER TABLE "StoragePool" ADD COLUMN "provisioningRatio" DOUBLE PRECISION;
