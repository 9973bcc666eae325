/**
 * Asks for a key's passphrase on the terminal, once per key, one prompt at a time even when many
 * nodes connect in parallel. Without a terminal it answers undefined: the caller explains the way out.
 */

const answers = new Map<string, Promise<string | undefined>>();
let queue: Promise<unknown> = Promise.resolve();

function readHidden(prompt: string): Promise<string | undefined> {
  const input = process.stdin;
  return new Promise((resolve) => {
    process.stderr.write(prompt);
    let typed = "";
    input.setRawMode(true);
    input.resume();
    const finish = (value: string | undefined) => {
      input.setRawMode(false);
      input.pause();
      input.removeListener("data", onData);
      process.stderr.write("\n");
      resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return finish(typed);
        if (ch === "\u0003" || ch === "\u0004") return finish(undefined);
        if (ch === "\u007f" || ch === "\b") typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    input.on("data", onData);
  });
}

export function askPassphrase(file: string): Promise<string | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return Promise.resolve(undefined);
  let answer = answers.get(file);
  if (!answer) {
    answer = queue.then(() => readHidden(`Passphrase for ${file}: `));
    queue = answer;
    answers.set(file, answer);
  }
  return answer;
}
