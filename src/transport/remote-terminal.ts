import type { NodeLink, RemoteChannel } from "./node-link.js";

/**
 * Runs a remote command attached to the local terminal: a real PTY in raw mode with window
 * resizes forwarded when stdin is a terminal, plain separate stdout and stderr otherwise.
 * Resolves with the remote exit status (128 + n for a signal, like a shell).
 */

const SIGNAL_NUMBERS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, KILL: 9, PIPE: 13, TERM: 15 };

export interface TerminalStreams {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

export async function runAttached(
  connection: Pick<NodeLink, "channel">,
  command: string,
  options: { pty: boolean; streams?: TerminalStreams },
): Promise<number> {
  const { stdin, stdout, stderr } = options.streams ?? {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
  };
  const pty = options.pty
    ? { term: process.env.TERM ?? "xterm-256color", rows: stdout.rows ?? 24, cols: stdout.columns ?? 80 }
    : undefined;
  const channel: RemoteChannel = await connection.channel(command, pty);
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  const onResize = () => channel.setWindow(stdout.rows ?? 24, stdout.columns ?? 80, 0, 0);
  const onInput = (data: Buffer) => channel.write(data);
  if (pty && stdin.isTTY) {
    stdin.setRawMode(true);
    stdout.on("resize", onResize);
  }
  // Interactive input, or piped input (`echo x | sync-cluster ssh w1 -- cat`); a terminal with a
  // command and no PTY gets EOF, like `ssh host cmd` under a closed stdin would.
  const forwardInput = Boolean(pty) || !stdin.isTTY;
  if (forwardInput) {
    stdin.on("data", onInput);
    stdin.once("end", () => channel.end());
    stdin.resume();
  } else {
    channel.end();
  }
  channel.pipe(stdout, { end: false });
  channel.stderr.pipe(stderr, { end: false });
  try {
    return await new Promise<number>((resolve, reject) => {
      let status = 255;
      channel.on("exit", (code: number | null, signal?: string) => {
        status = code ?? 128 + (SIGNAL_NUMBERS[signal ?? ""] ?? 1);
      });
      channel.on("close", () => resolve(status));
      channel.on("error", reject);
    });
  } finally {
    stdin.off("data", onInput);
    stdin.pause();
    if (pty && stdin.isTTY) {
      stdin.setRawMode(wasRaw);
      stdout.off("resize", onResize);
    }
  }
}
