import {
  createContext,
  type ReactNode,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from "react";
import {
  api,
  type ApiClient,
  type SecondFactor,
  type Session,
  type SessionEnd,
  type User,
} from "./lib/api";
import type { Me } from "./lib/types";

type AuthState =
  | { status: "restoring" }
  | { status: "signed-out"; end: SessionEnd | null }
  | { status: "signed-in"; user: User };

/**
 * `GET /api/auth/me` for the signed-in user, asked once per sign-in or restored session
 * (not on every token refresh). `me` is null while the answer is awaited or when it failed.
 */
type Profile = { userId: number; me: Me | null; failed: boolean };

type Auth = AuthState & {
  profile: Profile | null;
  signIn: (username: string, password: string, second?: SecondFactor) => Promise<void>;
  signOut: () => Promise<void>;
  /** Asks `/api/auth/me` again (e.g. once two-factor sign-in was turned on or off). */
  reloadProfile: () => void;
};

const Ctx = createContext<Auth | null>(null);

const CHANNEL = "keygate-session";

/**
 * Holds who is signed in. On load it restores the session from the refresh cookie; it
 * tells other tabs when this one signs in or out, and refreshes when the tab comes back
 * from the background with a token close to expiry.
 */
export function AuthProvider({
  children,
  client = api,
}: {
  children: ReactNode;
  client?: ApiClient;
}) {
  const [state, setState] = useState<AuthState>(() => {
    const s = client.current;
    return s ? { status: "signed-in", user: s.user } : { status: "restoring" };
  });

  const channelRef = useRef<BroadcastChannel | null>(null);
  const [profile, setProfile] = useState<Profile | null>(null);
  const [profileTick, setProfileTick] = useState(0);
  const userId = state.status === "signed-in" ? state.user.id : null;

  useEffect(() => {
    if (userId === null) {
      setProfile(null);
      return;
    }
    let live = true;
    setProfile((p) => (p?.userId === userId ? p : { userId, me: null, failed: false }));
    client.me().then(
      (me) => {
        if (live) setProfile({ userId, me, failed: false });
      },
      () => {
        if (live) setProfile({ userId, me: null, failed: true });
      },
    );
    return () => {
      live = false;
    };
  }, [client, userId, profileTick]);

  useEffect(() => {
    const channel = typeof BroadcastChannel !== "undefined" ? new BroadcastChannel(CHANNEL) : null;
    channelRef.current = channel;
    const off = client.subscribe((session: Session | null, end: SessionEnd | null) => {
      setState(
        session ? { status: "signed-in", user: session.user } : { status: "signed-out", end },
      );
    });
    if (!client.current) {
      client.refresh().then(
        (s) => {
          if (!s) setState({ status: "signed-out", end: null });
        },
        () =>
          setState({
            status: "signed-out",
            end: {
              reason: "expired",
              message:
                "Keygate did not answer while restoring your session. Check that the server is running, then sign in.",
            },
          }),
      );
    }
    if (channel) {
      channel.onmessage = (e: MessageEvent<{ type: string }>) => {
        if (e.data?.type === "signed-out")
          client.drop({ reason: "elsewhere", message: "You signed out in another tab." });
        if (e.data?.type === "signed-in" && !client.current)
          void client.refresh().catch(() => undefined);
      };
    }
    const onVisible = () => {
      if (document.visibilityState === "visible") void client.freshen().catch(() => undefined);
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      off();
      channel?.close();
      channelRef.current = null;
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [client]);

  const value = useMemo<Auth>(
    () => ({
      ...state,
      profile: profile?.userId === userId ? profile : null,
      signIn: async (username, password, second) => {
        await client.login(username, password, second);
        channelRef.current?.postMessage({ type: "signed-in" });
      },
      signOut: async () => {
        await client.logout();
        channelRef.current?.postMessage({ type: "signed-out" });
      },
      reloadProfile: () => setProfileTick((t) => t + 1),
    }),
    [state, profile, userId, client],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useAuth(): Auth {
  const a = useContext(Ctx);
  if (!a) throw new Error("useAuth outside AuthProvider");
  return a;
}

export type SignedInUser = User & {
  isAdmin: boolean;
  /**
   * Whether the console offers minting, editing, rolling and revoking keys, from
   * `/api/auth/me`'s `permissions.manage_keys`. Null while a reseller's answer is awaited.
   * Should the question fail, the actions are offered and the server has the last word.
   */
  canManageKeys: boolean | null;
  /** The rate limit of a key without its own (`defaults.key_rate_limit_per_minute`), once known. */
  defaultKeyRateLimit: number | null;
  /** KEYGATE_REQUIRE_2FA asks this user to turn on two-factor sign-in, and it is not on yet. */
  needsTwoFactor: boolean;
};

/** The signed-in user; only for components rendered inside the signed-in shell. */
export function useUser(): SignedInUser {
  const a = useAuth();
  if (a.status !== "signed-in") throw new Error("useUser while signed out");
  const isAdmin = a.user.role === "admin";
  const me = a.profile?.me ?? null;
  return {
    ...a.user,
    isAdmin,
    canManageKeys: me ? me.permissions.manage_keys : a.profile?.failed || isAdmin ? true : null,
    defaultKeyRateLimit: me?.defaults.key_rate_limit_per_minute ?? null,
    needsTwoFactor: me?.two_factor_required === true && me.two_factor_enabled !== true,
  };
}
