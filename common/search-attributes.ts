import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";

/**
 * Custom search attributes registered on the Temporal server (scripts/services/temporal.sh), so an
 * operator can list every operation of one VM or host in the Temporal UI, e.g. `VmId = "..."`.
 */
export const VM_ID = defineSearchAttributeKey("VmId", SearchAttributeType.KEYWORD);
export const HOST_ID = defineSearchAttributeKey("HostId", SearchAttributeType.KEYWORD);
export const OPERATION_TYPE = defineSearchAttributeKey("OperationType", SearchAttributeType.KEYWORD);
export const OPERATION_ID = defineSearchAttributeKey("OperationId", SearchAttributeType.KEYWORD);
