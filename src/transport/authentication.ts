import { readFile } from "node:fs/promises";
import { createConnection } from "node:net";
import ssh2 from "ssh2";
import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { askPassphrase } from "./passphrase.js";

/**
 * How we log in, in OpenSSH's order: ssh-agent first, then each identity file. A key with a
 * passphrase is only unlocked when its turn comes, so a key the agent already holds is never
 * asked for; whatever could not be offered is remembered to explain a refusal.
 */

type AuthMethod =
  | { type: "agent"; username: string; agent: string }
  | { type: "publickey"; username: string; key: Buffer; passphrase?: string };

interface IdentityKey {
  file: string;
  key: Buffer;
  encrypted: boolean;
}

/** A stale SSH_AUTH_SOCK is common (a forwarded session that ended); probed once per socket. */
const agentProbes = new Map<string, Promise<boolean>>();

function agentListening(socket: string): Promise<boolean> {
  let probe = agentProbes.get(socket);
  if (!probe) {
    probe = new Promise((resolve) => {
      const s = createConnection(socket);
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    agentProbes.set(socket, probe);
  }
  return probe;
}

async function readKeys(node: NodeSpec): Promise<IdentityKey[]> {
  const keys: IdentityKey[] = [];
  for (const file of node.identityFiles) {
    const key = await readFile(file);
    const parsed = ssh2.utils.parseKey(key);
    const encrypted = parsed instanceof Error && /passphrase/i.test(parsed.message);
    if (parsed instanceof Error && !encrypted)
      throw new NodeError(node.name, `cannot use the key ${file}: ${parsed.message}`);
    keys.push({ file, key, encrypted });
  }
  return keys;
}

/** The node's identity files that need a passphrase (only a terminal can unlock them). */
export async function passphraseKeys(node: NodeSpec): Promise<string[]> {
  return (await readKeys(node)).filter((k) => k.encrypted).map((k) => k.file);
}

export class LoginPlan {
  /** What was offered to the node, for the message when it refuses. */
  private readonly offered: string[] = [];
  /** Why something could not be offered at all. */
  private readonly problems: string[] = [];
  private readonly attempts: (() => Promise<AuthMethod | undefined>)[] = [];

  private constructor(
    private readonly node: NodeSpec,
    keys: readonly IdentityKey[],
    agent: { socket: string; listening: boolean } | undefined,
  ) {
    const username = node.user;
    if (agent?.listening) {
      this.attempts.push(async () => {
        this.offered.push("ssh-agent");
        return { type: "agent", username, agent: agent.socket };
      });
    } else if (agent) {
      this.problems.push(`no ssh-agent is listening at ${agent.socket} (SSH_AUTH_SOCK)`);
    }
    for (const k of keys) this.attempts.push(() => this.unlock(k));
  }

  static async for(node: NodeSpec, agentSocket: string | undefined): Promise<LoginPlan> {
    const keys = await readKeys(node);
    const agent = agentSocket
      ? { socket: agentSocket, listening: await agentListening(agentSocket) }
      : undefined;
    return new LoginPlan(node, keys, agent);
  }

  private async unlock(k: IdentityKey): Promise<AuthMethod | undefined> {
    const username = this.node.user;
    if (!k.encrypted) {
      this.offered.push(k.file);
      return { type: "publickey", username, key: k.key };
    }
    const passphrase = await askPassphrase(k.file);
    if (passphrase === undefined) {
      this.problems.push(
        `the key ${k.file} is protected by a passphrase and there is no terminal to ask for it: add it to ssh-agent (ssh-add ${k.file}) and run again`,
      );
      return undefined;
    }
    if (ssh2.utils.parseKey(k.key, passphrase) instanceof Error) {
      this.problems.push(`the passphrase for ${k.file} is wrong`);
      return undefined;
    }
    this.offered.push(k.file);
    return { type: "publickey", username, key: k.key, passphrase };
  }

  /** Nothing at all to offer: said before connecting. */
  get empty(): boolean {
    return this.attempts.length === 0;
  }

  emptyError(): NodeError {
    return new NodeError(
      this.node.name,
      [
        ...this.problems,
        "no SSH key to log in with: start ssh-agent and add a key (ssh-add), or set identityFile in the inventory",
      ].join("; "),
    );
  }

  /** ssh2's authHandler: the next method to try, or false when none is left. */
  readonly next = (_methodsLeft: unknown, _partial: unknown, callback: (m: AuthMethod | false) => void) => {
    void (async () => {
      for (let attempt = this.attempts.shift(); attempt; attempt = this.attempts.shift()) {
        const method = await attempt();
        if (method) return callback(method);
      }
      callback(false);
    })();
  };

  /** The message for a node that refused every method offered. */
  refusal(where: string): string {
    const refused =
      this.offered.length > 0
        ? `the node refused ${this.offered.join(" and ")}: check the user and that the key is in the node's authorized_keys`
        : "";
    return `authentication failed for ${this.node.user}@${where}: ${[...this.problems, refused].filter(Boolean).join("; ")}`;
  }
}
