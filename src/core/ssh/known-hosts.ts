import { createHash, createHmac } from "node:crypto";

/**
 * OpenSSH known_hosts, read the way ssh reads it: plain, wildcard, negated, `[host]:port` and
 * hashed (`|1|salt|hash`) host patterns, and `@revoked` keys. Pure: the caller reads the file.
 */

export interface KnownHostEntry {
  line: number;
  marker?: "@cert-authority" | "@revoked";
  hostPatterns: string;
  keyType: string;
  keyBase64: string;
}

export type HostKeyVerdict =
  | { kind: "match"; line: number }
  | { kind: "mismatch"; lines: number[]; knownTypes: string[] }
  | { kind: "unknown" }
  | { kind: "revoked"; line: number };

const KEY_TYPE = /^[A-Za-z][A-Za-z0-9@._+-]*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/[ \t]+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0] === "@revoked" || fields[0] === "@cert-authority") {
      marker = fields[0];
      fields.shift();
    }
    const [hostPatterns, keyType, keyBase64] = fields;
    // Blank lines, comments, unknown @markers and SSH1 `bits exponent modulus` keys are all skipped, as ssh does.
    if (!hostPatterns || hostPatterns.startsWith("#") || hostPatterns.startsWith("@")) continue;
    if (!keyType || !KEY_TYPE.test(keyType) || !keyBase64 || !BASE64.test(keyBase64)) continue;
    entries.push({ line: i + 1, ...(marker ? { marker } : {}), hostPatterns, keyType, keyBase64 });
  }
  return entries;
}

/** The name ssh looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's match_pattern: `*` and `?` wildcards; the caller lowercases both sides. */
function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === "?" || pattern[p] === text[t])) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === "*") {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else return false;
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

/** `|1|salt|hash`: HMAC-SHA1 of the looked-up name, keyed by the salt. */
function hashedMatch(pattern: string, name: string): boolean {
  const parts = pattern.split("|");
  if (parts.length !== 4 || parts[1] !== "1") return false;
  const salt = Buffer.from(parts[2]!, "base64");
  return createHmac("sha1", salt).update(name).digest().equals(Buffer.from(parts[3]!, "base64"));
}

/**
 * Whether an entry's host field covers this host and port. ssh lowercases the host name before the
 * lookup, so hashed entries are compared against the lowercased name too. A hashed field is a single
 * hash, never a list; in a pattern list a matching negated pattern excludes the host outright.
 */
export function hostMatches(hostPatterns: string, host: string, port: number): boolean {
  const name = hostKeyName(host.toLowerCase(), port);
  if (hostPatterns.startsWith("|")) return hashedMatch(hostPatterns, name);
  let matched = false;
  for (const raw of hostPatterns.split(",")) {
    const negated = raw.startsWith("!");
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (wildcardMatch(pattern, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export function verifyHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  keyType: string,
  keyBase64: string,
): HostKeyVerdict {
  // Certificate authorities sign host certificates; we only check plain keys, so they never apply.
  const applicable = entries.filter(
    (e) => e.marker !== "@cert-authority" && hostMatches(e.hostPatterns, host, port),
  );
  // Like ssh, a revoked key is refused for every host its line covers (usually `*`), before anything else.
  const revoked = applicable.find((e) => e.marker === "@revoked" && e.keyBase64 === keyBase64);
  if (revoked) return { kind: "revoked", line: revoked.line };
  const known = applicable.filter((e) => e.marker === undefined);
  const match = known.find((e) => e.keyType === keyType && e.keyBase64 === keyBase64);
  if (match) return { kind: "match", line: match.line };
  // Mirrors OpenSSH: only a different key of the same type means the key changed. A host known only
  // by other key types is "unknown" for this one, so a new key type can be added (UpdateHostKeys).
  const sameType = known.filter((e) => e.keyType === keyType);
  if (sameType.length > 0)
    return {
      kind: "mismatch",
      lines: sameType.map((e) => e.line),
      knownTypes: [...new Set(known.map((e) => e.keyType))],
    };
  return { kind: "unknown" };
}

/** As `ssh-keygen -l` prints it: SHA256 of the key blob, unpadded base64. */
export function fingerprintSha256(keyBase64: string): string {
  return `SHA256:${createHash("sha256").update(Buffer.from(keyBase64, "base64")).digest("base64").replace(/=+$/, "")}`;
}

export function knownHostsLine(host: string, port: number, keyType: string, keyBase64: string): string {
  return `${hostKeyName(host, port)} ${keyType} ${keyBase64}`;
}
