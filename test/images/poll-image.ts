import type { TestSystem } from "../support/system";

/** GETs the image every 100 ms until `until` holds (its live progress, its status...); returns it. */
export async function pollImage(system: TestSystem, imageId: string, until: (image: any) => boolean, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const image = (await system.request("GET", `/v1/images/${imageId}`)).body;
    if (until(image)) return image;
    if (Date.now() > deadline) throw new Error(`image ${imageId} still ${JSON.stringify(image)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
