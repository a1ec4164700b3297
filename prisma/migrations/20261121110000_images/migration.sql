-- CreateEnum
CREATE TYPE "ImageKind" AS ENUM ('iso', 'disk');

-- CreateEnum
CREATE TYPE "ImageStatus" AS ENUM ('PENDING', 'DOWNLOADING', 'READY', 'FAILED', 'DELETING');

-- AlterTable
ALTER TABLE "Vm" ADD COLUMN     "imageId" TEXT;

-- CreateTable
CREATE TABLE "Image" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "ImageKind" NOT NULL,
    "osFamily" TEXT,
    "osDistribution" TEXT,
    "osVersion" TEXT,
    "catalogId" TEXT,
    "sourceUrl" TEXT,
    "checksumFileUrl" TEXT,
    "checksumAlgorithm" TEXT,
    "checksumValue" TEXT,
    "format" TEXT,
    "sourceFormat" TEXT,
    "sizeBytes" BIGINT,
    "poolId" TEXT NOT NULL,
    "hostId" TEXT,
    "path" TEXT,
    "status" "ImageStatus" NOT NULL DEFAULT 'PENDING',
    "progress" INTEGER NOT NULL DEFAULT 0,
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "uploadTokenHash" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Image_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "VmCloudInit" (
    "vmId" TEXT NOT NULL,
    "hostname" TEXT NOT NULL,
    "defaultUser" TEXT,
    "sshAuthorizedKeys" TEXT[],
    "passwordHash" TEXT,
    "userData" TEXT,

    CONSTRAINT "VmCloudInit_pkey" PRIMARY KEY ("vmId")
);

-- CreateIndex
CREATE INDEX "Image_poolId_idx" ON "Image"("poolId");

-- AddForeignKey
ALTER TABLE "Vm" ADD CONSTRAINT "Vm_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Image" ADD CONSTRAINT "Image_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "StoragePool"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Image" ADD CONSTRAINT "Image_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "VmCloudInit" ADD CONSTRAINT "VmCloudInit_vmId_fkey" FOREIGN KEY ("vmId") REFERENCES "Vm"("id") ON DELETE CASCADE ON UPDATE CASCADE;
