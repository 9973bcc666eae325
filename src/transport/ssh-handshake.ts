import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Duplex } from "node:stream";
import ssh2, { type ConnectConfig } from "ssh2";
import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import {
  fingerprintSha256,
  type KnownHostEntry,
  knownHostsLine,
  parseKnownHosts,
  verifyHostKey,
} from "../core/ssh/known-hosts.js";
import { LoginPlan } from "./authentication.js";

/**
 * One SSH handshake, to a node or to a jump host alike: the host key checked against known_hosts
 * before anything is sent (recorded only when accepting new keys), the login plan, keepalives,
 * and errors that say what to do. Over TCP, or over a stream already leading to the host.
 */

/** Keepalives a node may leave unanswered before its connection is declared dead. */
export const KEEPALIVE_COUNT_MAX = 3;

/** A short connectTimeout means the user wants to know soon that a node went silent. */
export function keepaliveIntervalMs(
  node: Pick<NodeSpec, "connectTimeout">,
  options: { keepaliveMs?: number },
): number {
  return options.keepaliveMs ?? Math.min(15_000, node.connectTimeout * 1000);
}

export interface HandshakeOptions {
  /** Path of the ssh-agent socket; default $SSH_AUTH_SOCK. */
  agentSocket?: string | undefined;
  /** Accept and record unknown host keys (--accept-new), in addition to the node's own setting. */
  acceptNew?: boolean;
  /** Keepalive interval in ms; 0 disables. */
  keepaliveMs?: number;
}

async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** The key type written inside an SSH public key blob (its first string). */
function keyTypeOf(blob: Buffer): string {
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString("latin1");
}

function describeConnectError(node: NodeSpec, error: Error & { code?: string; level?: string }): string {
  const where = `${node.host}:${node.port}`;
  switch (error.code) {
    case "ECONNREFUSED":
      return `connection refused by ${where}: is sshd running there, and is the port right?`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `the host name ${node.host} could not be resolved (DNS): check the inventory's host or ~/.ssh/config`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `${where} is unreachable from here: check the network or a VPN`;
    case "ECONNRESET":
      return `the connection to ${where} was reset`;
    case "ETIMEDOUT":
      return `connecting to ${where} timed out after ${node.connectTimeout}s`;
  }
  if (error.level === "client-timeout" || /Timed out while waiting for handshake/.test(error.message)) {
    return `no SSH handshake from ${where} within ${node.connectTimeout}s`;
  }
  return `cannot connect to ${where}: ${error.message}`;
}

/**
 * Connects and logs in to `node` (its host, port, user, keys, known_hosts and timeout), over
 * `sock` when given. `explainFailure` may replace the generic message for a broken transport
 * (a ProxyCommand's own error output); host key and login problems always speak for themselves.
 */
export async function handshake(
  node: NodeSpec,
  options: HandshakeOptions = {},
  sock?: Duplex,
  explainFailure?: () => Promise<string | undefined>,
): Promise<ssh2.Client> {
  const entries = await readKnownHosts(node.knownHosts);
  const login = await LoginPlan.for(node, options.agentSocket ?? process.env.SSH_AUTH_SOCK);
  const acceptNew = node.acceptNewHostKeys || (options.acceptNew ?? false);
  let hostKeyProblem: string | undefined;
  let recordKey: string | undefined;

  const config: ConnectConfig = {
    host: node.host,
    port: node.port,
    username: node.user,
    readyTimeout: node.connectTimeout * 1000,
    keepaliveInterval: keepaliveIntervalMs(node, options),
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    ...(sock ? { sock: sock as ConnectConfig["sock"] } : {}),
    hostVerifier: (key: Buffer) => {
      const type = keyTypeOf(key);
      const base64 = key.toString("base64");
      const verdict = verifyHostKey(entries, node.host, node.port, type, base64);
      switch (verdict.kind) {
        case "match":
          return true;
        case "revoked":
          hostKeyProblem = `the host key of ${node.host}:${node.port} (${fingerprintSha256(base64)}) is marked @revoked in ${node.knownHosts} line ${verdict.line}`;
          return false;
        case "mismatch":
          hostKeyProblem =
            `THE HOST KEY OF ${node.host}:${node.port} HAS CHANGED: it now presents ${type} ${fingerprintSha256(base64)}, ` +
            `which differs from ${node.knownHosts} line ${verdict.lines.join(", ")}. Someone could be intercepting the connection, or the node was reinstalled. ` +
            `If you know why it changed, remove the old entry (ssh-keygen -R '${node.port === 22 ? node.host : `[${node.host}]:${node.port}`}' -f ${node.knownHosts}) and connect again.`;
          return false;
        case "unknown":
          if (acceptNew) {
            recordKey = knownHostsLine(node.host, node.port, type, base64);
            return true;
          }
          hostKeyProblem =
            `the host key of ${node.host}:${node.port} is not in ${node.knownHosts} (${type} ${fingerprintSha256(base64)}). ` +
            `Verify the fingerprint, then add it (ssh-keyscan -p ${node.port} ${node.host} >> ${node.knownHosts}), set acceptNewHostKeys: true for the node, or pass --accept-new.`;
          return false;
      }
    },
  };
  config.authHandler = login.next as ConnectConfig["authHandler"];

  const client = new ssh2.Client();
  // ssh2 may emit several errors for one broken handshake (ECONNRESET, then "Connection lost
  // before handshake"): the first decides, the others must still find a listener, or they
  // would kill the process and every other node's work with it.
  client.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    const fail = (error: Error & { code?: string; level?: string }) => {
      client.removeAllListeners("ready");
      client.end();
      void (async () => {
        const message =
          hostKeyProblem ??
          (error.level === "client-authentication"
            ? login.refusal(`${node.host}:${node.port}`)
            : ((await explainFailure?.()) ?? describeConnectError(node, error)));
        reject(new NodeError(node.name, message));
      })();
    };
    client.once("ready", () => {
      client.removeListener("error", fail);
      resolve();
    });
    client.once("error", fail);
    if (login.empty) {
      reject(login.emptyError());
      return;
    }
    client.connect(config);
    // Requests are small and answered at once: Nagle's algorithm would hold the second write of
    // each (and of the handshake) until the worker's delayed ACK, 40 ms on Linux.
    client.setNoDelay(true);
  });
  if (recordKey) {
    await mkdir(dirname(node.knownHosts), { recursive: true, mode: 0o700 });
    await appendFile(node.knownHosts, `${recordKey}\n`, { mode: 0o600 });
  }
  // Errors after the handshake are reported per operation (the listener above keeps the process alive).
  return client;
}
