import { randomBytes } from "node:crypto";
import { openSecrets, parseSecretsKey, sealSecrets } from "../../common/sealed-secrets";

describe("sealed pool secrets", () => {
  const key = randomBytes(32);
  const secrets = { key: "AQBcZ2Rn5qWkIhAAm1p0sYaQ3jvXvKpX2Q==", chapPassword: "s3cret!" };

  test("seal hides every value and open gives it back", () => {
    const sealed = sealSecrets(secrets, key);
    for (const [name, value] of Object.entries(sealed)) {
      expect(value).toMatch(/^qx-sealed:v1:/);
      expect(value).not.toContain(secrets[name as keyof typeof secrets]);
    }
    expect(openSecrets(sealed, key)).toEqual(secrets);
    expect(sealSecrets(secrets, key).key).not.toBe(sealed.key); // a fresh IV each time
  });

  test("the wrong key, a tampered value or a value moved to another name cannot be opened", () => {
    const sealed = sealSecrets(secrets, key);
    expect(() => openSecrets(sealed, randomBytes(32))).toThrow(/cannot be opened/);
    const tampered = sealed.key!.slice(0, -6) + (sealed.key!.endsWith("AAAA==") ? "BBBB==" : "AAAA==");
    expect(() => openSecrets({ key: tampered }, key)).toThrow(/cannot be opened/);
    expect(() => openSecrets({ chapPassword: sealed.key! }, key)).toThrow(/cannot be opened/);
    expect(() => openSecrets({ key: "plain" }, key)).toThrow(/not sealed/);
  });

  test("no key configured: secrets cannot be sealed, and nothing to seal needs none", () => {
    expect(() => sealSecrets(secrets, undefined)).toThrow(/QX_SECRETS_KEY/);
    expect(sealSecrets({}, undefined)).toEqual({});
    expect(() => parseSecretsKey(Buffer.alloc(16).toString("base64"))).toThrow(/32 bytes/);
  });
});
