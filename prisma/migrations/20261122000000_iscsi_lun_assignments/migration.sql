-- An iSCSI volume's LUN, unique per pool: the control plane's volume to LUN map
ALTER TABLE "Volume" ADD COLUMN     "lun" INTEGER;

CREATE UNIQUE INDEX "Volume_poolId_lun_key" ON "Volume"("poolId", "lun");
