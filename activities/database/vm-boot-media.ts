import type { PrismaClient } from "@prisma/client";

/** What the NoCloud seed ISO of a VM is built from; the password only ever as its crypt hash. */
export interface CloudInitSettings {
  hostname: string;
  defaultUser?: string;
  sshAuthorizedKeys: string[];
  passwordHash?: string;
  userData?: string;
}

/** What a VM boots from besides its disk (a cloud image is already its disk's backing file). */
export interface VmBootMedia {
  /** An installer ISO, attached as the first CD-ROM and booted from before the disk. */
  installIso: { poolId: string; path: string } | null;
  /** Access settings: a seed ISO is built from them. Null for a VM without any (it gets no seed ISO). */
  cloudInit: CloudInitSettings | null;
}

export function createVmBootMediaActivities(prisma: PrismaClient) {
  return {
    async loadVmBootMedia(vmId: string): Promise<VmBootMedia> {
      const vm = await prisma.vm.findUniqueOrThrow({ where: { id: vmId }, include: { image: true, cloudInit: true } });
      const iso = vm.image?.kind === "iso" && vm.image.path ? { poolId: vm.image.poolId, path: vm.image.path } : null;
      const settings = vm.cloudInit;
      return {
        installIso: iso,
        cloudInit: settings
          ? {
              hostname: settings.hostname,
              sshAuthorizedKeys: settings.sshAuthorizedKeys,
              ...(settings.defaultUser ? { defaultUser: settings.defaultUser } : {}),
              ...(settings.passwordHash ? { passwordHash: settings.passwordHash } : {}),
              ...(settings.userData ? { userData: settings.userData } : {}),
            }
          : null,
      };
    },
  };
}
