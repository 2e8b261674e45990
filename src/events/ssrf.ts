import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/** Addresses named for what they are, beyond their range: cloud metadata services. */
const METADATA = new Set(["169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192"]);

const RANGE_WORDS: Record<string, string> = {
  loopback: "a loopback address",
  private: "a private address",
  linkLocal: "a link-local address",
  uniqueLocal: "a unique-local address",
  carrierGradeNat: "a carrier-grade NAT address",
  unspecified: "the unspecified address",
  broadcast: "the broadcast address",
  multicast: "a multicast address",
  reserved: "a reserved address",
};

/**
 * Why a webhook may not be sent to `address`, or null when it may: only public unicast
 * addresses are reached. An IPv4-mapped IPv6 address is judged as the IPv4 address it holds;
 * IPv6 forms that embed or tunnel to IPv4 (NAT64, 6to4, Teredo) are refused outright.
 */
export function refusedAddress(address: string): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    const bare = address.replace(/^\[|\]$/g, "");
    const zone = bare.indexOf("%");
    parsed = ipaddr.parse(zone === -1 ? bare : bare.slice(0, zone));
  } catch {
    return `${address} is not an IP address`;
  }
  if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress())
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const text = parsed.toString();
  if (METADATA.has(text)) return `${text} is a cloud metadata address`;
  const range = parsed.range();
  if (range === "unicast") return null;
  return `${text} is ${RANGE_WORDS[range] ?? `not a public address (${range})`}`;
}

export const MAX_URL_LENGTH = 2048;

/** What is wrong with a webhook URL's form (not yet its addresses), or null. */
export function urlProblem(raw: string): string | null {
  if (raw.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "must be an absolute http:// or https:// URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    return `must be an http:// or https:// URL (got ${url.protocol.replace(/:$/, "")})`;
  if (url.username !== "" || url.password !== "")
    return "must not hold credentials (user:password@); check the signature instead, with the endpoint's signing secret";
  if (url.hash !== "" || raw.includes("#")) return "must not have a fragment (#…)";
  if (url.hostname === "") return "must name a host";
  return null;
}

export class AddressRefused extends Error {
  readonly code = "ADDRESS_REFUSED";
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http(s).request: resolves every address of the host, refuses them all if any
 * is refused, and hands the socket only the addresses checked. The connection is made to what
 * was checked here, so no second resolution can swap the target (no TOCTOU).
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number }, cb: LookupCallback) => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (err, addresses) => {
      if (err) return cb(err, []);
      if (addresses.length === 0) return cb(new AddressRefused(`${hostname} has no address`), []);
      if (!allowPrivate) {
        for (const a of addresses) {
          const why = refusedAddress(a.address);
          if (why !== null)
            return cb(
              new AddressRefused(
                `${hostname} resolves to ${why}; set KEYGATE_WEBHOOK_ALLOW_PRIVATE=true to allow it`,
              ),
              [],
            );
        }
      }
      if (options.all) return cb(null, addresses);
      const first = addresses[0] as LookupAddress;
      cb(null, first.address, first.family);
    });
  };
}

/** Resolves a host as delivery will, and says why its addresses are refused (null when fine). */
export async function hostProblem(hostname: string, allowPrivate: boolean): Promise<string | null> {
  const host = hostname.replace(/^\[|\]$/g, "");
  if (isIP(host)) {
    const why = allowPrivate ? null : refusedAddress(host);
    return why === null ? null : `${why}; set KEYGATE_WEBHOOK_ALLOW_PRIVATE=true to allow it`;
  }
  return new Promise((resolve) => {
    guardedLookup(allowPrivate)(host, { all: true }, (err) => {
      if (err === null) return resolve(null);
      if (err instanceof AddressRefused) return resolve(err.message);
      resolve(`${host} does not resolve (${err.code ?? err.message})`);
    });
  });
}
