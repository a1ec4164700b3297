-- Issue 11: guest agent status per VM, as its host reports it.
CREATE TABLE "VmGuestAgent" (
    "vmId" TEXT NOT NULL,
    "connected" BOOLEAN NOT NULL,
    "since" TIMESTAMP(3) NOT NULL,
    "qemuGaVersion" TEXT,
    "packageVersion" TEXT,
    "osName" TEXT,
    "osVersion" TEXT,
    "osId" TEXT,
    "kernelRelease" TEXT,
    "hostname" TEXT,
    "interfaces" JSONB NOT NULL DEFAULT '[]',
    "filesystems" TEXT,
    "hostId" TEXT NOT NULL,
    "observedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "VmGuestAgent_pkey" PRIMARY KEY ("vmId")
);

ALTER TABLE "VmGuestAgent" ADD CONSTRAINT "VmGuestAgent_vmId_fkey" FOREIGN KEY ("vmId") REFERENCES "Vm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Issue 11: the result of operations that answer something (a guest script's exit code and output).
ALTER TABLE "Operation" ADD COLUMN "result" JSONB;

-- Issue 11: fleet agent upgrades.
CREATE TYPE "AgentUpgradeOutcome" AS ENUM ('PENDING', 'RUNNING', 'DONE', 'FAILED', 'SKIPPED', 'NOT_STARTED');

CREATE TABLE "AgentUpgradeRun" (
    "id" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "selector" JSONB NOT NULL,
    "maxParallel" INTEGER NOT NULL,
    "maxFailures" INTEGER NOT NULL,
    "allowDowngrade" BOOLEAN NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "AgentUpgradeRun_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "AgentUpgradeTarget" (
    "runId" TEXT NOT NULL,
    "vmId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "vmName" TEXT NOT NULL,
    "outcome" "AgentUpgradeOutcome" NOT NULL DEFAULT 'PENDING',
    "operationId" TEXT,
    "fromVersion" TEXT,
    "toVersion" TEXT,
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    CONSTRAINT "AgentUpgradeTarget_pkey" PRIMARY KEY ("runId","vmId")
);
ALTER TABLE "AgentUpgradeTarget" ADD CONSTRAINT "AgentUpgradeTarget_runId_fkey" FOREIGN KEY ("runId") REFERENCES "AgentUpgradeRun"("id") ON DELETE CASCADE ON UPDATE CASCADE;
