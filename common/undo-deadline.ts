/**
 * How long a saga's undos keep trying a host that does not answer (QX_UNDO_DEADLINE_MS), counted
 * from the start of compensation: long enough for an operator to bring a rebooted or partitioned
 * host back, short enough that an operation does not sit COMPENSATING for a day. After it, what
 * the undos could not remove is recorded on the resource (ERROR + cleanup) for DELETE or the sweep.
 */
export const DEFAULT_UNDO_DEADLINE_MS = 60 * 60 * 1000;
