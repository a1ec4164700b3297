import { isPasswordHash, normaliseSshKeys } from "../../common/access-settings";
import { permanentFailure } from "../../common/errors";

/**
 * The NoCloud `meta-data` and `user-data` documents. Both are written as JSON, which YAML reads
 * too (cloud-init parses them with PyYAML's safe_load): no YAML emitter to get wrong, and no
 * user string (hostname, key comment, caller data) can ever add a key or a document, since
 * JSON.stringify quotes and escapes every one. The few characters JSON leaves raw but YAML 1.1
 * treats as line breaks or refuses (C1 controls, DEL, U+2028/2029, BOM, U+FFFE/FFFF) are escaped.
 *
 * Caller user-data must be `#cloud-config` followed by a JSON object: there is no YAML parser
 * here, and a half-understood YAML document merged by text could override the keys set below.
 * Those keys (the login: hostname, users, passwords, SSH settings) cannot be set by the caller.
 */

const invalid = (message: string) => permanentFailure("VALIDATION_FAILED", message);

/** The login user when the caller names none; one name on every distribution. */
const DEFAULT_USER = "quantix";

/** Keys derived from the VM's access settings: caller user-data may not set them. */
const MANAGED_KEYS = ["hostname", "fqdn", "preserve_hostname", "users", "user", "chpasswd", "password", "ssh_pwauth", "ssh_authorized_keys"];

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const CLOUD_CONFIG_HEADER = "#cloud-config";

export interface UserDataInput {
  hostname: string;
  defaultUser?: string;
  sshAuthorizedKeys: string[];
  /** SHA-512/256 crypt hash; never the plain password. */
  passwordHash?: string;
  /** `#cloud-config` followed by a JSON object, merged under the managed keys. */
  userData?: string;
}

/** JSON that PyYAML reads back as the same value. */
function toYamlSafeJson(value: unknown): string {
  const json = JSON.stringify(value, (_key: string, v: unknown) => {
    // Lone surrogates survive JSON.stringify as escapes that PyYAML turns into invalid text.
    if (typeof v === "string" && /\p{Cs}/u.test(v)) throw invalid("cloud-init data contains invalid Unicode");
    return v;
  }, 2);
  return json.replace(/[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function assertHostname(hostname: string): void {
  if (!HOSTNAME.test(hostname)) throw invalid(`hostname ${JSON.stringify(hostname)} is not a valid host name`);
}

function parseCallerUserData(userData: string): Record<string, unknown> {
  const newline = userData.indexOf("\n");
  const header = (newline === -1 ? userData : userData.slice(0, newline)).trimEnd();
  if (header !== CLOUD_CONFIG_HEADER) throw invalid(`userData must start with a "${CLOUD_CONFIG_HEADER}" line`);
  const body = newline === -1 ? "" : userData.slice(newline + 1);
  if (body.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw invalid(`userData after "${CLOUD_CONFIG_HEADER}" must be a JSON object (JSON is valid YAML; other YAML syntax is not accepted)`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw invalid("userData must be a JSON object");
  const managed = Object.keys(parsed).filter((key) => MANAGED_KEYS.includes(key));
  if (managed.length > 0) throw invalid(`userData may not set ${managed.join(", ")}: they come from the VM's access settings`);
  return parsed as Record<string, unknown>;
}

export function buildMetaData(instanceId: string, hostname: string): string {
  assertHostname(hostname);
  return `${toYamlSafeJson({ "instance-id": instanceId, "local-hostname": hostname })}\n`;
}

export function buildUserData(input: UserDataInput): string {
  assertHostname(input.hostname);
  const name = input.defaultUser ?? DEFAULT_USER;
  if (!USER_NAME.test(name)) throw invalid(`defaultUser ${JSON.stringify(name)} is not a valid user name`);
  if (input.passwordHash !== undefined && !isPasswordHash(input.passwordHash)) throw invalid("passwordHash is not a SHA-512/256 crypt hash");
  const keys = normaliseSshKeys(input.sshAuthorizedKeys);
  const caller = input.userData === undefined ? {} : parseCallerUserData(input.userData);
  const hash = input.passwordHash;
  // Spread, not Object.assign: a caller "__proto__" key stays a plain (and harmless) data key.
  const config = {
    ...caller,
    hostname: input.hostname,
    users: [
      {
        name,
        shell: "/bin/bash",
        sudo: "ALL=(ALL) NOPASSWD:ALL",
        lock_passwd: hash === undefined,
        ssh_authorized_keys: keys,
      },
    ],
    ...(hash === undefined ? {} : { chpasswd: { expire: false, users: [{ name, password: hash, type: "hash" }] }, ssh_pwauth: true }),
  };
  return `${CLOUD_CONFIG_HEADER}\n${toYamlSafeJson(config)}\n`;
}
