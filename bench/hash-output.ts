/**
 * What a one-shot SHA-256 costs by the form of its answer: a Buffer (a new ArrayBuffer per
 * call) against a string ("binary", that is latin1; base64; hex). Why the HMAC of a signed
 * request asks for "binary" and writes it into buffers it keeps (src/credentials/hmac.ts).
 *
 *   node --import tsx bench/hash-output.ts
 */
import { hash } from "node:crypto";

const inputs = Array.from({ length: 1000 }, (_, i) =>
  Buffer.from(
    `${"6".repeat(64)}"@method": GET\n"@target-uri": http://127.0.0.1:40000/api/v1/external/whoami\n"@signature-params": ("@method" "@target-uri");created=${1764690000 + i};keyid="pk_live_0123";alg="hmac-sha256";nonce="n${i}"`,
  ),
);
const N = 300_000;
for (let round = 0; round < 3; round++) {
  for (const output of ["buffer", "binary", "base64", "hex"] as const) {
    let bytes = 0;
    const started = performance.now();
    for (let i = 0; i < N; i++) bytes += hash("sha256", inputs[i % 1000] as Buffer, output).length;
    const us = ((performance.now() - started) * 1000) / N;
    console.log(
      `round ${round + 1}  ${output.padEnd(6)} ${us.toFixed(3)} µs a hash (${bytes > 0 ? "ok" : "?"})`,
    );
  }
}
