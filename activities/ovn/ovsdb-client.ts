/**
 * A small OVSDB client (RFC 7047 JSON-RPC over TCP or a unix socket) for OVN's Northbound database.
 *
 * Why our own client rather than `ovn-nbctl` with argument arrays: every ovn-nbctl run connects,
 * downloads the whole Northbound database (it monitors every table it might touch) and only then
 * applies its commands, so each change costs O(database): the per-port cost of a create grows
 * with the number of ports, which the network benchmark forbids. One long-lived connection makes a
 * change cost O(change), and a transaction holds exactly the operations we compose: inserts with
 * named uuids, mutations, `wait` guards for compare-and-swap, our external_ids on every row. No
 * maintained npm OVSDB client exists (shared recipe ovn.md, section 5), and the protocol subset we
 * need is small: transact and echo.
 *
 * Protocol points (the recipe's pitfalls): messages are bare JSON objects back to back (no
 * newline, no length), split here by brace depth outside strings; the server's "echo" requests
 * must be answered or it drops the connection; a failed operation still comes back as an RPC
 * success, with the failure as an element of the result array, so every element is checked.
 */
import net from "node:net";

export type OvsdbAtom = string | number | boolean | ["uuid", string] | ["named-uuid", string];
export type OvsdbValue = OvsdbAtom | ["set", OvsdbAtom[]] | ["map", [OvsdbAtom, OvsdbAtom][]];
export type OvsdbRow = Record<string, OvsdbValue>;
export type OvsdbCondition = [string, "==" | "!=" | "includes" | "excludes" | "<" | "<=" | ">" | ">=", OvsdbValue];

export type OvsdbOperation =
  | { op: "insert"; table: string; row: OvsdbRow; "uuid-name"?: string }
  | { op: "select"; table: string; where: OvsdbCondition[]; columns?: string[] }
  | { op: "update"; table: string; where: OvsdbCondition[]; row: OvsdbRow }
  | { op: "mutate"; table: string; where: OvsdbCondition[]; mutations: [string, "insert" | "delete" | "+=" | "-=", OvsdbValue][] }
  | { op: "delete"; table: string; where: OvsdbCondition[] }
  | { op: "wait"; table: string; where: OvsdbCondition[]; columns: string[]; until: "==" | "!="; rows: OvsdbRow[]; timeout: number }
  | { op: "comment"; comment: string };

export interface OvsdbResult {
  uuid?: ["uuid", string];
  rows?: OvsdbRow[];
  count?: number;
  error?: string;
  details?: string;
}

/** A transaction the server refused: nothing of it was applied (OVSDB transactions are atomic). */
export class OvsdbTransactionError extends Error {
  constructor(
    readonly error: string,
    readonly details: string,
    /** The index of the failed operation, or null for a failure at commit. */
    readonly operationIndex: number | null,
  ) {
    super(`OVSDB transaction failed${operationIndex === null ? "" : ` at operation ${operationIndex}`}: ${error}${details ? ` (${details})` : ""}`);
    this.name = "OvsdbTransactionError";
  }

  /** A `wait` guard did not hold: the rows were not as the transaction expected. */
  get guardFailed(): boolean {
    return this.error === "timed out";
  }
}

/** The connection failed or the server did not answer: whether the transaction applied is unknown. */
export class OvsdbConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OvsdbConnectionError";
  }
}

export interface OvsdbClient {
  /** Runs the operations as one atomic transaction; throws OvsdbTransactionError if any failed. */
  transact(database: string, operations: OvsdbOperation[]): Promise<OvsdbResult[]>;
  close(): Promise<void>;
}

export const set = (atoms: OvsdbAtom[]): ["set", OvsdbAtom[]] => ["set", atoms];
export const map = (entries: Record<string, string>): ["map", [string, string][]] => ["map", Object.entries(entries)];
export const uuid = (id: string): ["uuid", string] => ["uuid", id];
export const namedUuid = (name: string): ["named-uuid", string] => ["named-uuid", name];

/** The atoms of a set column as returned by select (a one-element set comes back bare). */
export function setAtoms(value: OvsdbValue | undefined): OvsdbAtom[] {
  if (value === undefined) return [];
  if (Array.isArray(value) && value[0] === "set") return value[1] as OvsdbAtom[];
  return [value as OvsdbAtom];
}

/** A map column as returned by select, as a plain object of strings. */
export function mapEntries(value: OvsdbValue | undefined): Record<string, string> {
  if (!Array.isArray(value) || value[0] !== "map") return {};
  return Object.fromEntries((value[1] as [OvsdbAtom, OvsdbAtom][]).map(([k, v]) => [String(k), String(v)]));
}

/** Splits a stream of back-to-back JSON objects by brace depth, skipping braces inside strings. */
class MessageSplitter {
  private buffer = "";
  private depth = 0;
  private inString = false;
  private escaped = false;
  private scanned = 0;

  push(chunk: string): string[] {
    this.buffer += chunk;
    const messages: string[] = [];
    let start = 0;
    for (let i = this.scanned; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === "\\") this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') this.inString = true;
      else if (c === "{") this.depth++;
      else if (c === "}" && --this.depth === 0) {
        messages.push(this.buffer.slice(start, i + 1));
        start = i + 1;
      }
    }
    this.buffer = this.buffer.slice(start);
    this.scanned = this.buffer.length;
    return messages;
  }
}

export interface OvsdbClientOptions {
  /** A request without an answer after this long fails with OvsdbConnectionError. */
  requestTimeoutMs?: number;
}

/**
 * A client over `tcp:HOST:PORT` or `unix:PATH` (the forms ovn-nbctl --db takes). It connects on
 * first use and again after the connection drops; a request in flight when it drops fails.
 */
export function createOvsdbClient(remote: string, options: OvsdbClientOptions = {}): OvsdbClient {
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  let socket: net.Socket | undefined;
  let connecting: Promise<net.Socket> | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: (result: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();

  const failAll = (err: Error) => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      p.reject(err);
      pending.delete(id);
    }
  };

  function connect(): Promise<net.Socket> {
    if (socket && !socket.destroyed) return Promise.resolve(socket);
    connecting ??= new Promise<net.Socket>((resolve, reject) => {
      const s = remote.startsWith("unix:") ? net.createConnection(remote.slice(5)) : net.createConnection(tcpTarget(remote));
      s.setEncoding("utf8");
      s.setNoDelay(true);
      const splitter = new MessageSplitter();
      s.once("connect", () => {
        socket = s;
        connecting = undefined;
        resolve(s);
      });
      s.on("data", (chunk: string) => {
        for (const text of splitter.push(chunk)) onMessage(s, JSON.parse(text));
      });
      s.on("error", (err) => {
        if (connecting) {
          connecting = undefined;
          reject(new OvsdbConnectionError(`OVSDB ${remote}: ${err.message}`));
        }
      });
      s.on("close", () => {
        if (socket === s) socket = undefined;
        failAll(new OvsdbConnectionError(`OVSDB ${remote}: connection closed`));
      });
    });
    return connecting;
  }

  function onMessage(s: net.Socket, message: { id?: unknown; method?: string; params?: unknown; result?: unknown; error?: unknown }): void {
    if (message.method === "echo") {
      s.write(JSON.stringify({ id: message.id, result: message.params ?? [], error: null }));
      return;
    }
    if (message.method) return; // notifications (update, locked...) are not used
    const request = pending.get(message.id as number);
    if (!request) return;
    pending.delete(message.id as number);
    clearTimeout(request.timer);
    if (message.error) request.reject(new OvsdbConnectionError(`OVSDB ${remote}: ${JSON.stringify(message.error)}`));
    else request.resolve(message.result);
  }

  async function call(method: string, params: unknown[]): Promise<unknown> {
    const s = await connect();
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new OvsdbConnectionError(`OVSDB ${remote}: no answer to ${method} in ${requestTimeoutMs} ms`));
        // The answer may still come; a fresh connection keeps it from being taken for another request's.
        s.destroy();
      }, requestTimeoutMs);
      pending.set(id, { resolve, reject, timer });
      s.write(JSON.stringify({ id, method, params }));
    });
  }

  return {
    async transact(database, operations) {
      const results = (await call("transact", [database, ...operations])) as OvsdbResult[];
      // Results come one per operation; a failed operation's element carries "error" and the rest
      // are null. A commit failure (a constraint violation found at the end) is one extra element.
      results.forEach((result, index) => {
        if (result?.error) throw new OvsdbTransactionError(result.error, result.details ?? "", index < operations.length ? index : null);
      });
      return results;
    },
    async close() {
      failAll(new OvsdbConnectionError(`OVSDB ${remote}: client closed`));
      const s = socket;
      socket = undefined;
      if (s && !s.destroyed) await new Promise<void>((resolve) => s.end(resolve));
    },
  };
}

function tcpTarget(remote: string): { host: string; port: number } {
  const match = /^tcp:(.+):(\d+)$/.exec(remote);
  if (!match) throw new OvsdbConnectionError(`not an OVSDB remote (tcp:HOST:PORT or unix:PATH): ${remote}`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, "$1"), port: Number(match[2]) };
}
