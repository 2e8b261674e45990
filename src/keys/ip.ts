import ipaddr from "ipaddr.js";

type Addr = ipaddr.IPv4 | ipaddr.IPv6;
type Range = readonly [Addr, number];

/** A pre-parsed allow-list: built once when a key is loaded, matched on every request. */
export type AllowList = {
  readonly entries: readonly string[];
  readonly ranges: readonly Range[];
};

export type AllowListProblem = { index: number; value: string; message: string };

export type AllowListResult =
  { ok: true; list: AllowList } | { ok: false; problems: AllowListProblem[] };

export const MAX_ALLOWED_IPS = 100;

/**
 * Parses IPv4/IPv6 addresses and CIDR ranges into canonical text (`10.0.0.0/8`,
 * `2001:db8::/32`, a lone address as itself). A range whose address has host bits
 * set is refused rather than silently widened, so what the operator typed is what
 * is enforced.
 */
export function parseAllowList(values: readonly string[]): AllowListResult {
  const problems: AllowListProblem[] = [];
  const entries: string[] = [];
  const ranges: Range[] = [];
  if (values.length > MAX_ALLOWED_IPS) {
    return {
      ok: false,
      problems: [
        { index: MAX_ALLOWED_IPS, value: "", message: `at most ${MAX_ALLOWED_IPS} entries` },
      ],
    };
  }
  values.forEach((raw, index) => {
    const value = typeof raw === "string" ? raw.trim() : "";
    const parsed = parseEntry(value);
    if (typeof parsed === "string") {
      problems.push({ index, value: String(raw).slice(0, 100), message: parsed });
      return;
    }
    const [addr, bits] = parsed;
    const text = bits === maxBits(addr) ? addr.toString() : `${addr.toString()}/${bits}`;
    if (!entries.includes(text)) {
      entries.push(text);
      ranges.push(parsed);
    }
  });
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, list: { entries, ranges } };
}

function maxBits(addr: Addr): number {
  return addr.kind() === "ipv4" ? 32 : 128;
}

function parseEntry(value: string): Range | string {
  if (value === "") return "empty entry";
  const slash = value.indexOf("/");
  const addrText = slash === -1 ? value : value.slice(0, slash);
  if (!isStrictAddress(addrText)) {
    return "not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.7, 10.0.0.0/8, 2001:db8::/32)";
  }
  const parsed = ipaddr.parse(addrText);
  if (slash === -1) {
    const addr = unmap(parsed);
    return [addr, maxBits(addr)];
  }
  const bitsText = value.slice(slash + 1);
  const max = maxBits(parsed);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) {
    return `prefix length must be 0-${max}`;
  }
  let addr: Addr = parsed;
  let bits = Number(bitsText);
  const network = networkOf(addr, bits);
  if (network.toString() !== addr.toString()) {
    return `host bits set: did you mean ${network.toString()}/${bits}?`;
  }
  // An IPv4-mapped IPv6 range (::ffff:a.b.c.d/96-128) is the IPv4 range it maps.
  if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    if (bits < 96) return "an IPv4-mapped IPv6 range needs a prefix of /96 or longer";
    addr = unmap(parsed);
    bits -= 96;
  }
  return [addr, bits];
}

/** ipaddr.js also accepts forms like `10.1` or octal; only dotted-quad and RFC 4291 text pass. */
function isStrictAddress(text: string): boolean {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return true;
  return text.includes(":") && ipaddr.IPv6.isValid(text) && !text.includes("%");
}

function networkOf(addr: Addr, bits: number): Addr {
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return ipaddr.fromByteArray(bytes);
}

/** IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) becomes plain IPv4. */
function unmap(addr: Addr): Addr {
  if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (addr as ipaddr.IPv6).toIPv4Address();
  }
  return addr;
}

/** Normalises a socket address for display and matching; unparsable input is returned as is. */
export function normalizeClientIp(ip: string): string {
  if (!ip.startsWith("::ffff:")) return ip;
  const rest = ip.slice(7);
  return ipaddr.IPv4.isValidFourPartDecimal(rest) ? rest : ip;
}

export function ipAllowed(list: AllowList, clientIp: string): boolean {
  if (!isStrictAddress(clientIp)) return false;
  const addr = unmap(ipaddr.parse(clientIp));
  const kind = addr.kind();
  for (const [range, bits] of list.ranges) {
    if (range.kind() === kind && addr.match(range, bits)) return true;
  }
  return false;
}
