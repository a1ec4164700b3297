import type { Command } from "commander";
import { ApiClient, type RequestOptions } from "./api-client";
import { printJson } from "./output";
import { operationSucceeded, watchOperation, type OperationView } from "./operation-watch";
import { resolveSettings } from "./settings";

export interface GlobalOptions {
  api?: string;
  tokenFile?: string;
  json?: boolean;
  wait: boolean;
  idempotencyKey?: string;
}

/** What every command needs: the API client and how to print and wait. */
export class CliContext {
  constructor(
    readonly api: ApiClient,
    readonly options: GlobalOptions,
  ) {}

  static from(command: Command): CliContext {
    const options = command.optsWithGlobals<GlobalOptions>();
    const settings = resolveSettings(options);
    return new CliContext(new ApiClient(settings.apiUrl, settings.token), options);
  }

  /** Prints a document as JSON with --json, otherwise through `human`. */
  show<T>(value: T, human: (value: T) => void): void {
    if (this.options.json) printJson(value);
    else human(value);
  }

  /**
   * Starts an operation (202 + operation) and, unless --no-wait, follows it to its end. Prints the
   * accepted document's ids, or the final operation.
   */
  async mutate(method: string, path: string, body?: unknown, request: Omit<RequestOptions, "body"> = {}): Promise<{ accepted: any; operation?: OperationView }> {
    const accepted = await this.api.request(method, path, { body, idempotencyKey: this.options.idempotencyKey, ...request });
    if (!this.options.wait) {
      this.show(accepted, (a) => console.log(`operation ${a.operationId} ${a.operation?.state ?? "accepted"}`));
      return { accepted };
    }
    const operation = await watchOperation(this.api, accepted.operationId, { quiet: this.options.json });
    // Exit code 1 when the operation the command waited for did not complete.
    if (!operationSucceeded(operation)) process.exitCode = 1;
    if (this.options.json) printJson({ ...accepted, operation });
    return { accepted, operation };
  }
}
