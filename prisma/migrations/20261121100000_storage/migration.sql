-- AlterTable
ALTER TABLE "StoragePoolHost" ADD COLUMN     "message" TEXT;

-- AlterTable
ALTER TABLE "Volume" ADD COLUMN     "backingVolumeId" TEXT,
ADD COLUMN     "targetDev" TEXT;

-- CreateTable
CREATE TABLE "StoragePoolSecret" (
    "poolId" TEXT NOT NULL,
    "values" JSONB NOT NULL,

    CONSTRAINT "StoragePoolSecret_pkey" PRIMARY KEY ("poolId")
);

-- CreateTable
CREATE TABLE "VolumeSnapshot" (
    "id" TEXT NOT NULL,
    "volumeId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "VolumeSnapshot_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "VolumeSnapshot_volumeId_name_key" ON "VolumeSnapshot"("volumeId", "name");

-- CreateIndex
CREATE INDEX "Volume_backingVolumeId_idx" ON "Volume"("backingVolumeId");

-- CreateIndex
CREATE UNIQUE INDEX "Volume_vmId_targetDev_key" ON "Volume"("vmId", "targetDev");

-- AddForeignKey
ALTER TABLE "StoragePoolSecret" ADD CONSTRAINT "StoragePoolSecret_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "StoragePool"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Volume" ADD CONSTRAINT "Volume_backingVolumeId_fkey" FOREIGN KEY ("backingVolumeId") REFERENCES "Volume"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "VolumeSnapshot" ADD CONSTRAINT "VolumeSnapshot_volumeId_fkey" FOREIGN KEY ("volumeId") REFERENCES "Volume"("id") ON DELETE CASCADE ON UPDATE CASCADE;

