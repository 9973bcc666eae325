import { basename } from "node:path";
import { stringify } from "yaml";

/** The commented inventory `sync-cluster init` writes; it loads as written (see its test). */

export interface TemplateOptions {
  entry?: string;
  root?: string;
  workers?: string[];
}

function projectNameFrom(rootName: string): string {
  const name = rootName.replace(/[^A-Za-z0-9._-]+/g, "_");
  return name === "" || name === "." || name === ".." ? "project" : name;
}

/** `init -w` takes what people type after ssh: `w13`, `10.0.0.12:2222`, `ubuntu@10.0.0.13`. */
function workerLine(worker: string): string {
  const parsed = /^(?:([^@\s]+)@)?([^:@\s]+)(?::(\d+))?$/.exec(worker);
  if (!parsed || (parsed[1] === undefined && parsed[3] === undefined))
    return `  - ${stringify(worker).trim()}`;
  const [, user, host, port] = parsed;
  const keys = [`host: ${stringify(host).trim()}`];
  if (port !== undefined) keys.push(`port: ${port}`);
  if (user !== undefined) keys.push(`user: ${stringify(user).trim()}`);
  return `  - { ${keys.join(", ")} }`;
}

export function inventoryTemplate(options: TemplateOptions = {}): string {
  const entry = stringify(options.entry ?? "-m workflow.main").trim();
  const root = stringify(options.root ?? ".").trim();
  // The project's name defaults to the root's; spell one out when that could not name a directory.
  // ("." and ".." are named after the directory they stand for, known only where the file lands.)
  const rootName = basename(options.root ?? ".");
  const nameLine = /^[A-Za-z0-9._-]+$/.test(rootName)
    ? "  # name: my_project             # the project's directory on the workers (default: root's name)"
    : `  name: ${projectNameFrom(rootName)}            # the project's directory on the workers`;
  const workers = options.workers?.length
    ? options.workers.map(workerLine).join("\n")
    : [
        "  - host: 10.0.0.11                # an address...",
        "  - host: 10.0.0.12",
        "    port: 2222",
        "  # - w13                          # ...or a bare name looked up in ~/.ssh/config",
      ].join("\n");
  return `# sync-cluster inventory: which workflow to ship, and to which machines.
# Every key is documented in config/cluster.example.yaml of the sync-cluster repository.

project:
  entry: ${entry}      # the module after python3 -m, or the main script: "workflow.py"
  root: ${root}                      # the directory python is started from (relative to this file)
  # python: venv/bin/python      # the leader's interpreter; default $VIRTUAL_ENV/bin/python, then python3
  # include: ["workflow/templates/*.json"]   # data files to ship too (globs relative to root)
  # exclude: ["tests/**"]        # files never to ship
${nameLine}

defaults:                        # applied to every node; each node can override them
  # user: ubuntu                 # default: ~/.ssh/config's User, else your local user name
  port: 22
  # identityFile: ~/.ssh/id_ed25519   # default: ssh-agent ($SSH_AUTH_SOCK)
  knownHosts: ~/.ssh/known_hosts
  venv: ~/venv                   # the venv on each node; must be made with --system-site-packages
  deployDir: ~/.sync-cluster     # releases live in DEPLOYDIR/PROJECT/
  acceptNewHostKeys: false       # true records unknown host keys instead of refusing them
  connectTimeout: 10             # seconds
  # jump: bastion                # jump host(s) like ssh -J; default: ~/.ssh/config's ProxyJump/ProxyCommand

concurrency: 8                   # workers handled at once (-j overrides)

# leader: { host: leader.example.org }   # checked by \`check\`; push goes to the workers

workers:
${workers}
# Or let the scheduler list them, instead of the list above (see config/cluster.example.yaml):
# workers: { slurm: { partition: debug } }
# workers: { command: "scontrol show hostnames $SLURM_JOB_NODELIST" }
`;
}
