// Every workflow the control-plane worker runs.
export { createVm } from "./create-vm";
export { deleteVm } from "./delete-vm";
export { powerVm } from "./power-vm";
export { announceHost } from "./announce-host";
