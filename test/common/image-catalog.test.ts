import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadImageCatalog } from "../../common/image-catalog";

let root: string;

beforeAll(() => {
  mkdirSync(path.join(__dirname, "../../.data"), { recursive: true });
  root = mkdtempSync(path.join(__dirname, "../../.data/test-images-catalog-"));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function operatorFile(images: unknown[]): string {
  const file = path.join(root, `catalog-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ images }));
  return file;
}

const mirrorDebian = {
  id: "debian-12-genericcloud",
  name: "Debian 12 from the local mirror",
  kind: "disk",
  os: { family: "linux", distribution: "debian", version: "12" },
  url: "http://mirror.internal/debian-12-genericcloud-amd64.qcow2",
  format: "qcow2",
  checksum: { algorithm: "sha256", value: "a".repeat(64) },
};

describe("loadImageCatalog", () => {
  test("the built-in catalog is valid: unique ids, https URLs, a checksum source for every image", async () => {
    const catalog = await loadImageCatalog();
    expect(catalog.length).toBeGreaterThanOrEqual(5);
    expect(new Set(catalog.map((e) => e.id)).size).toBe(catalog.length);
    expect(catalog.some((e) => e.kind === "iso")).toBe(true);
    for (const entry of catalog) {
      expect(entry.url).toMatch(/^https:\/\//);
      expect(entry.checksum ?? entry.checksumFile).toBeDefined();
    }
  });

  test("an operator entry replaces the built-in one with its id, and new ones are added", async () => {
    const extra = { ...mirrorDebian, id: "company-base", name: "Company base image" };
    const catalog = await loadImageCatalog(operatorFile([mirrorDebian, extra]));
    const builtIn = await loadImageCatalog();
    expect(catalog.map((e) => e.id)).toEqual([...builtIn.map((e) => e.id), "company-base"]);
    expect(catalog.find((e) => e.id === "debian-12-genericcloud")).toEqual(mirrorDebian);
  });

  test("refuses a duplicate id within a file", async () => {
    await expect(loadImageCatalog(operatorFile([mirrorDebian, mirrorDebian]))).rejects.toThrow(
      /id "debian-12-genericcloud" appears twice \(images\.0 and images\.1\)/,
    );
  });

  test("refuses invalid entries, naming each problem", async () => {
    const bad = [
      { ...mirrorDebian, url: "ftp://mirror.internal/x.qcow2" },
      { ...mirrorDebian, id: "Bad Id" },
      { ...mirrorDebian, kind: "iso" },
      { ...mirrorDebian, checksum: { algorithm: "sha512", value: "a".repeat(64) } },
      { ...mirrorDebian, unknownField: true },
    ];
    for (const entry of bad) await expect(loadImageCatalog(operatorFile([entry]))).rejects.toThrow(/image catalog .* is invalid:\n {2}images\.0[.:]/);
    await expect(loadImageCatalog(path.join(root, "missing.json"))).rejects.toThrow(/cannot be read/);
  });
});
