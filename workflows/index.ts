// Every workflow the control-plane worker runs.
export { createVm } from "./create-vm";
export { deleteVm } from "./delete-vm";
export { powerVm } from "./power-vm";
export { announceHost } from "./announce-host";
export { downloadImage } from "./download-image";
export { deleteImage } from "./delete-image";
export { initStoragePool } from "./init-storage-pool";
export { releaseStoragePool } from "./release-storage-pool";
export { monitorHost } from "./monitor-host";
export { listPoolFiles } from "./list-pool-files";
export { createVolume } from "./create-volume";
export { deleteVolume } from "./delete-volume";
export { resizeVolume } from "./resize-volume";
export { cloneVolume } from "./clone-volume";
export { snapshotVolume } from "./snapshot-volume";
export { attachVolume } from "./attach-volume";
export { detachVolume } from "./detach-volume";
