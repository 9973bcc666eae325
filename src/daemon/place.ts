import { lstatSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * Where the user's daemon lives: a directory only its user may enter, holding the control socket,
 * the lock naming the running daemon's PID and its log. Whoever can reach the socket can run
 * commands on every node as this user, so the directory is checked by the daemon before it
 * listens and by every client before it connects, as OpenSSH checks a ControlPath's directory.
 */

export interface DaemonPlace {
  dir: string;
  socket: string;
  /** The running daemon's PID; created exclusively, so two daemons never serve one socket. */
  lock: string;
  log: string;
}

export function daemonPlace(env: NodeJS.ProcessEnv = process.env): DaemonPlace {
  const uid = process.getuid?.() ?? 0;
  const dir =
    env.SYNC_CLUSTER_DAEMON_DIR ||
    (env.XDG_RUNTIME_DIR
      ? join(env.XDG_RUNTIME_DIR, "sync-cluster")
      : join(env.HOME || homedir(), ".cache", "sync-cluster", `daemon-${uid}`));
  return {
    dir,
    socket: join(dir, "daemon.sock"),
    lock: join(dir, "daemon.pid"),
    log: join(dir, "daemon.log"),
  };
}

/** Why `dir` is no place for the daemon's socket, or undefined when it is private to this user. */
export function privateDirProblem(dir: string): string | undefined {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    return `${dir} cannot be read: ${(error as Error).message}`;
  }
  const uid = process.getuid?.() ?? 0;
  if (stat.isSymbolicLink())
    return `${dir} is a symbolic link; the daemon's directory must be a real directory`;
  if (!stat.isDirectory()) return `${dir} is not a directory`;
  if (stat.uid !== uid)
    return `${dir} belongs to user id ${stat.uid}, not to you (${uid}): someone else could reach your nodes through it; remove it`;
  if ((stat.mode & 0o077) !== 0)
    return `${dir} is open to other users (mode ${(stat.mode & 0o777).toString(8)}): anyone who can reach its socket can run commands on your nodes; run \`chmod 700 ${dir}\` or remove it`;
  return undefined;
}

/** Creates the directory (0700) when missing; the problem with it, if any, as for privateDirProblem. */
export function makePrivateDir(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    return `cannot create ${dir}: ${(error as Error).message}`;
  }
  return privateDirProblem(dir);
}
