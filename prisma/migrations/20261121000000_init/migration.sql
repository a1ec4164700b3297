-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "HostState" AS ENUM ('ONLINE', 'OFFLINE');

-- CreateEnum
CREATE TYPE "PoolKind" AS ENUM ('dir', 'nfs', 'rbd', 'iscsi');

-- CreateEnum
CREATE TYPE "PoolHealth" AS ENUM ('healthy', 'degraded', 'error', 'unmounted');

-- CreateEnum
CREATE TYPE "VolumeState" AS ENUM ('CREATING', 'READY', 'DELETING', 'FAILED');

-- CreateEnum
CREATE TYPE "VmState" AS ENUM ('CREATING', 'RUNNING', 'STOPPED', 'FAILED', 'DELETING');

-- CreateEnum
CREATE TYPE "OperationState" AS ENUM ('PENDING', 'RUNNING', 'COMPENSATING', 'COMPLETED', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "StepKind" AS ENUM ('STEP', 'UNDO');

-- CreateEnum
CREATE TYPE "StepState" AS ENUM ('RUNNING', 'COMPLETED', 'FAILED');

-- CreateTable
CREATE TABLE "Host" (
    "id" TEXT NOT NULL,
    "hostname" TEXT NOT NULL,
    "cpuCount" INTEGER NOT NULL,
    "memoryMiB" INTEGER NOT NULL,
    "libvirtUri" TEXT NOT NULL,
    "domainType" TEXT NOT NULL,
    "state" "HostState" NOT NULL DEFAULT 'ONLINE',
    "lastSeenAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Host_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "StoragePool" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "PoolKind" NOT NULL,
    "config" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "StoragePool_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "StoragePoolHost" (
    "poolId" TEXT NOT NULL,
    "hostId" TEXT NOT NULL,
    "health" "PoolHealth" NOT NULL DEFAULT 'healthy',
    "capacityBytes" BIGINT NOT NULL DEFAULT 0,
    "freeBytes" BIGINT NOT NULL DEFAULT 0,
    "volumeCount" INTEGER NOT NULL DEFAULT 0,
    "reportedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "StoragePoolHost_pkey" PRIMARY KEY ("poolId","hostId")
);

-- CreateTable
CREATE TABLE "Volume" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "poolId" TEXT NOT NULL,
    "hostId" TEXT,
    "vmId" TEXT,
    "sizeBytes" BIGINT NOT NULL,
    "format" TEXT NOT NULL DEFAULT 'qcow2',
    "state" "VolumeState" NOT NULL DEFAULT 'CREATING',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Volume_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Vm" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "vcpus" INTEGER NOT NULL,
    "memoryMiB" INTEGER NOT NULL,
    "diskSizeGiB" INTEGER NOT NULL,
    "poolId" TEXT,
    "baseImage" TEXT,
    "bootVolumeId" TEXT NOT NULL,
    "state" "VmState" NOT NULL DEFAULT 'CREATING',
    "hostId" TEXT,
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Vm_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Operation" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "targetType" TEXT NOT NULL,
    "targetId" TEXT NOT NULL,
    "state" "OperationState" NOT NULL DEFAULT 'PENDING',
    "progress" INTEGER NOT NULL DEFAULT 0,
    "currentStep" TEXT,
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "requestedBy" TEXT NOT NULL,
    "idempotencyKey" TEXT,
    "requestHash" TEXT,
    "workflowId" TEXT NOT NULL,
    "input" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Operation_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "OperationStep" (
    "id" SERIAL NOT NULL,
    "operationId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "StepKind" NOT NULL,
    "state" "StepState" NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "finishedAt" TIMESTAMP(3),
    "errorCode" TEXT,
    "errorMessage" TEXT,

    CONSTRAINT "OperationStep_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "StoragePool_name_key" ON "StoragePool"("name");

-- CreateIndex
CREATE INDEX "Volume_vmId_idx" ON "Volume"("vmId");

-- CreateIndex
CREATE INDEX "Vm_hostId_idx" ON "Vm"("hostId");

-- CreateIndex
CREATE UNIQUE INDEX "Operation_workflowId_key" ON "Operation"("workflowId");

-- CreateIndex
CREATE INDEX "Operation_targetType_targetId_idx" ON "Operation"("targetType", "targetId");

-- CreateIndex
CREATE UNIQUE INDEX "Operation_requestedBy_idempotencyKey_key" ON "Operation"("requestedBy", "idempotencyKey");

-- CreateIndex
CREATE UNIQUE INDEX "OperationStep_operationId_name_kind_key" ON "OperationStep"("operationId", "name", "kind");

-- AddForeignKey
ALTER TABLE "StoragePoolHost" ADD CONSTRAINT "StoragePoolHost_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "StoragePool"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StoragePoolHost" ADD CONSTRAINT "StoragePoolHost_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Volume" ADD CONSTRAINT "Volume_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "StoragePool"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Volume" ADD CONSTRAINT "Volume_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Volume" ADD CONSTRAINT "Volume_vmId_fkey" FOREIGN KEY ("vmId") REFERENCES "Vm"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Vm" ADD CONSTRAINT "Vm_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "OperationStep" ADD CONSTRAINT "OperationStep_operationId_fkey" FOREIGN KEY ("operationId") REFERENCES "Operation"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- At most one unfinished operation per target: the database, not the API, serialises operations
-- on a resource, so two racing requests cannot both start one. (Prisma's schema language has no
-- partial indexes, so this one lives only here.)
CREATE UNIQUE INDEX "Operation_one_active_per_target" ON "Operation"("targetType", "targetId")
  WHERE "state" IN ('PENDING', 'RUNNING', 'COMPENSATING');
