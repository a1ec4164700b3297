/**
 * Collects every failure a test file expects, so the file can check at its end that no secret
 * (a CHAP password, a Ceph key) leaked into any error message or stack.
 */
export function failureRecorder() {
  const failures: Error[] = [];
  /** The failure of `promise`, which must fail. */
  async function failureOf(promise: Promise<unknown>): Promise<Error & { type?: string }> {
    const err = await promise.then(
      () => {
        throw new Error("expected a failure");
      },
      (e: unknown) => e as Error & { type?: string },
    );
    failures.push(err);
    return err;
  }
  return { failures, failureOf };
}
