import { randomUUID } from "node:crypto";

/** A problem+json answer of the API (RFC 9457), with its stable code. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  body?: unknown;
  /** A raw body (an upload) streamed as application/octet-stream. */
  stream?: ReadableStream<Uint8Array>;
  idempotencyKey?: string;
}

/**
 * The REST API as the CLI sees it. Every mutating request carries an Idempotency-Key (one per CLI
 * invocation unless the user gives one), so a retried command never starts a second operation.
 */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: "application/json" };
    let body: string | ReadableStream<Uint8Array> | undefined;
    if (options.stream) {
      headers["content-type"] = "application/octet-stream";
      body = options.stream;
    } else if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.body);
    } else if (method !== "GET") {
      // Mutating routes take JSON; an empty object is the body of a bodiless action.
      headers["content-type"] = "application/json";
      body = "{}";
    }
    if (method !== "GET") headers["idempotency-key"] = options.idempotencyKey ?? randomUUID();
    const res = await fetch(new URL(path, this.baseUrl), { method, headers, body, ...(options.stream ? { duplex: "half" } : {}) } as RequestInit);
    const text = await res.text();
    const parsed = text ? safeJson(text) : undefined;
    if (!res.ok) {
      const problem = (parsed ?? {}) as { code?: string; detail?: string; title?: string; errors?: unknown };
      const detail = problem.detail ?? problem.title ?? (text || res.statusText);
      throw new ApiProblem(res.status, problem.code ?? `HTTP_${res.status}`, detail, parsed);
    }
    return parsed as T;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
