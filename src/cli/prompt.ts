/** A terminal-like input: a stream that may switch raw mode (process.stdin when it is a TTY). */
export type TtyInput = NodeJS.ReadableStream & {
  isTTY?: boolean;
  setRawMode?: (mode: boolean) => unknown;
};

export class Cancelled extends Error {
  constructor() {
    super("cancelled");
  }
}

/**
 * Asks for a secret on a terminal without echoing it: raw mode, so every key arrives here
 * and nothing is printed but the prompt. Enter ends it; Backspace deletes; Ctrl-U clears;
 * Ctrl-C (or Ctrl-D on an empty line) cancels.
 */
export function readHidden(
  prompt: string,
  input: TtyInput,
  output: NodeJS.WritableStream,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = "";
    output.write(prompt);
    input.setRawMode?.(true);
    input.setEncoding("utf8");
    const finish = (err?: Error) => {
      input.off("data", onData);
      input.setRawMode?.(false);
      input.pause();
      output.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string | Buffer) => {
      const text = String(chunk);
      // An escape sequence (arrow keys, function keys) is not part of a password.
      if (text.startsWith("\u001b")) return;
      for (const ch of text) {
        if (ch === "\r" || ch === "\n") return finish();
        if (ch === "\u0003") return finish(new Cancelled());
        if (ch === "\u0004") {
          if (value === "") return finish(new Cancelled());
          continue;
        }
        if (ch === "\u007f" || ch === "\b") value = [...value].slice(0, -1).join("");
        else if (ch === "\u0015") value = "";
        else if (ch >= " ") value += ch;
      }
    };
    input.on("data", onData);
    input.resume();
  });
}

/** Everything on the input until its end, less one trailing line break (`echo pw | …`). */
export async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  input.setEncoding("utf8");
  for await (const chunk of input) text += String(chunk);
  return text.replace(/\r?\n$/, "");
}
