import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { Cancelled, readAll, readHidden } from "./prompt.js";

/** A stand-in terminal: records raw-mode switches; what is typed is written to it. */
function terminal() {
  const input = Object.assign(new PassThrough(), {
    isTTY: true,
    modes: [] as boolean[],
    setRawMode(mode: boolean) {
      input.modes.push(mode);
      return input;
    },
  });
  const output = new PassThrough();
  let shown = "";
  output.on("data", (c: Buffer) => (shown += c.toString()));
  return { input, output, shown: () => shown };
}

describe("readHidden", () => {
  it("reads up to Enter in raw mode, echoing nothing but the prompt", async () => {
    const t = terminal();
    const read = readHidden("Password: ", t.input, t.output);
    t.input.write("s3cret-pa");
    t.input.write("ss\r");
    await expect(read).resolves.toBe("s3cret-pass");
    expect(t.shown()).toBe("Password: \n");
    expect(t.input.modes).toEqual([true, false]);
  });

  it("applies Backspace and Ctrl-U, and ignores escape sequences", async () => {
    const t = terminal();
    const read = readHidden("> ", t.input, t.output);
    t.input.write("wrong\u0015abcd\u007f\u007fcd");
    t.input.write("\u001b[A");
    t.input.write("é\n");
    await expect(read).resolves.toBe("abcdé");
  });

  it("cancels on Ctrl-C, and on Ctrl-D before anything is typed", async () => {
    for (const key of ["abc\u0003", "\u0004"]) {
      const t = terminal();
      const read = readHidden("> ", t.input, t.output);
      t.input.write(key);
      await expect(read).rejects.toBeInstanceOf(Cancelled);
      expect(t.input.modes).toEqual([true, false]);
    }
  });
});

describe("readAll", () => {
  it("reads to the end and drops one trailing line break only", async () => {
    for (const [text, want] of [
      ["pass word\n", "pass word"],
      ["pass\r\n", "pass"],
      ["pass\n\n", "pass\n"],
      ["pass", "pass"],
    ]) {
      const input = new PassThrough();
      input.end(text);
      await expect(readAll(input)).resolves.toBe(want);
    }
  });
});
