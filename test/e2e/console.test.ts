/**
 * The console in a real browser (Debian's chromium, driven by playwright-core) against a
 * real Keygate process on a temporary SQLite file. Screenshots of every main page, at
 * desktop and phone width, go to test-results/screenshots/.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { call, ROOT, type Server, startKeygate } from "../process.js";

const CHROMIUM = "/usr/bin/chromium";
const present = existsSync(CHROMIUM);
// Locally the browser tests may be skipped when chromium is absent; in CI they must run.
const skip = !present && !process.env.CI;
const SHOTS = join(ROOT, "test-results", "screenshots");
const ADMIN_PASSWORD = "console-admin-pass";
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 812 };
const KEY_RE = /^pk_live_[0-9a-f]{32}$/;
// The header's banner while the Test data switch is on (console/src/components/Shell.tsx).
const TEST_DATA_BANNER =
  "Test data — you are seeing and changing test subscribers, transactions and keys; live data is hidden";
// Expected in the console's own flows (a wrong password, a session that ended, a record
// another reseller owns): the browser logs every 4xx answer to a fetch as an error.
const EXPECTED_ERROR = /^Failed to load resource: the server responded with a status of 4\d\d /;
// Reports every Content-Security-Policy violation on the console, where the test can see it.
const REPORT_VIOLATIONS = `document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.effectiveDirective + " blocked " + (e.blockedURI || "inline") +
    " at " + e.sourceFile + ":" + e.lineNumber + " " + JSON.stringify(e.sample));
});`;

describe.skipIf(skip)("the console in a browser", () => {
  const dir = mkdtempSync(join(tmpdir(), "keygate-e2e-"));
  let server: Server;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  const ids = { firstKey: 0, rolledKey: 0, subscriber: 0 };
  const keys = { first: "", rolled: "", test: "" };
  /** Subscribers the admin adds with the Test data switch on, and off. */
  const names = { test: "test-bob", live: "live-carol" };
  /** CSP violations, uncaught errors and unexpected console errors: each fails its test. */
  const problems: string[] = [];

  const whoami = (key: string) =>
    call(base, "GET", "/api/v1/external/whoami", { "x-api-key": key });

  async function shot(name: string) {
    const size = page.viewportSize();
    const suffix = size && size.width < 600 ? "phone" : "desktop";
    await page.waitForTimeout(250); // let charts finish drawing
    await page.screenshot({ path: join(SHOTS, `${name}-${suffix}.png`), fullPage: true });
  }

  async function heading(name: string | RegExp) {
    await page.getByRole("heading", { level: 1, name }).waitFor();
  }

  async function signIn(username: string, password: string) {
    await page.getByLabel("Username").fill(username);
    await page.getByRole("textbox", { name: "Password" }).fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
  }

  async function signOut() {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("You are signed out.").waitFor();
  }

  async function nav(label: string) {
    await page
      .getByRole("navigation", { name: "Sections" })
      .getByRole("link", { name: label })
      .click();
    await heading(label);
  }

  /** Chooses an option of a Mantine Select inside `scope` (its options open in a portal). */
  async function pick(scope: Locator, combobox: string | RegExp, option: string) {
    await scope.getByRole("combobox", { name: combobox }).click();
    await page.getByRole("option", { name: option }).click();
  }

  async function readSecret(): Promise<string> {
    const dialog = page.getByRole("dialog");
    const value = await dialog.getByTestId("show-once-secret").inputValue();
    await dialog.getByText("it will not be shown again").waitFor();
    return value;
  }

  async function closeShowOnce() {
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("I have stored it somewhere safe").check();
    await dialog.getByRole("button", { name: "Done" }).click();
    await dialog.waitFor({ state: "detached" });
  }

  /** Flips the header's Test data switch and waits for the page to follow. */
  async function setTestData(on: boolean) {
    const toggle = page.getByRole("switch", { name: "Test data" });
    await (on ? toggle.check() : toggle.uncheck());
    await expectEnvironment(on ? "test" : "live");
  }

  /** The header says which data is shown: the banner (test only) and its environment. */
  async function expectEnvironment(env: "live" | "test", where = "") {
    const banner = page.getByRole("status").filter({ hasText: /^Test data — / });
    if (env === "test") {
      await banner.waitFor();
      expect(await banner.textContent(), where).toBe(TEST_DATA_BANNER);
    } else await banner.waitFor({ state: "detached" });
    expect(await page.locator("header").getAttribute("data-environment"), where).toBe(env);
    expect(await page.getByRole("switch", { name: "Test data" }).isChecked(), where).toBe(
      env === "test",
    );
    expect(await page.title(), where).toBe(env === "test" ? "Test data · Keygate" : "Keygate");
  }

  /** The page's accent: a primary button's colour and the header's bottom border (test only). */
  async function accent(): Promise<{ button: string; border: string }> {
    return (await page.evaluate(`(() => {
      const header = document.querySelector("header");
      const button = [...document.querySelectorAll("main button")].find(
        (b) => b.textContent === "Add a subscriber",
      );
      const style = header ? getComputedStyle(header) : null;
      return {
        button: button ? getComputedStyle(button).backgroundColor : "",
        border: style && style.borderBottomWidth === "3px" ? style.borderBottomColor : "",
      };
    })()`)) as { button: string; border: string };
  }

  /** Adds a subscriber on Fibre 100 with a generated password, from the Subscribers page. */
  async function addSubscriber(username: string) {
    await nav("Subscribers");
    await page.getByRole("button", { name: "Add a subscriber" }).first().click();
    const form = page.getByRole("dialog");
    await form.getByLabel("Username").fill(username);
    await pick(form, /^Service/, "Fibre 100");
    await form.getByRole("button", { name: "Create subscriber" }).click();
    expect(await readSecret()).toHaveLength(20);
    await closeShowOnce();
    await heading(new RegExp(username));
  }

  beforeAll(async () => {
    if (!present)
      throw new Error(`${CHROMIUM} is missing; .ci/run installs it (apt-get install chromium)`);
    mkdirSync(SHOTS, { recursive: true });
    // The server serves console/dist only if it exists when it starts: build it first if stale.
    execFileSync(process.execPath, [join(ROOT, "scripts", "ensure-console.mjs")], {
      cwd: ROOT,
      stdio: "inherit",
    });
    server = await startKeygate({
      KEYGATE_DATABASE_URL: `sqlite:${join(dir, "keygate.db")}`,
      KEYGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    });
    base = server.base;
    context = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: DESKTOP,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(10_000);
    await context.addInitScript(REPORT_VIOLATIONS);
    page.on("console", (msg) => {
      if (msg.type() === "error" && !EXPECTED_ERROR.test(msg.text())) problems.push(msg.text());
    });
    page.on("pageerror", (err) => problems.push(`uncaught: ${err.message}`));
  }, 120_000);

  afterEach(async ({ task }) => {
    if (task.result?.state === "fail" && page)
      await page.screenshot({ path: join(SHOTS, `failed-${task.name.slice(0, 40)}.png`) });
    const seen = problems.splice(0);
    expect(seen, "CSP violations or errors in the browser").toEqual([]);
  });

  it("serves the console under a strict Content-Security-Policy that the browser enforces", async () => {
    const res = await page.goto(`${base}/`);
    const csp = (await res?.allHeaders())?.["content-security-policy"] ?? "";
    expect(csp).toMatch(/script-src 'self';/);
    expect(csp).toMatch(/style-src 'self' 'nonce-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    await page.getByRole("heading", { name: "Keygate" }).waitFor();
    // Mantine's injected <style> elements carry the page's nonce, and their CSS applies.
    const styled = await page.evaluate(`(() => {
      const styles = [...document.querySelectorAll("style")];
      const button = document.querySelector("button[type=submit]");
      return {
        styles: styles.length,
        unnonced: styles.filter((s) => !s.nonce).length,
        primary: getComputedStyle(document.documentElement).getPropertyValue("--mantine-primary-color-filled"),
        button: button ? getComputedStyle(button).backgroundColor : "",
      };
    })()`);
    expect(styled).toMatchObject({ unnonced: 0, primary: expect.stringMatching(/\S/) });
    expect((styled as { styles: number }).styles).toBeGreaterThan(0);
    expect((styled as { button: string }).button).not.toMatch(
      /^(rgba\(0, 0, 0, 0\)|transparent|)$/,
    );
    // The policy is enforced, not only sent: an inline style and an inline script are refused.
    await page.evaluate(`(() => {
      const style = document.createElement("style");
      style.textContent = "body { color: red }";
      document.head.append(style);
      const script = document.createElement("script");
      script.textContent = "window.inlineRan = true";
      document.head.append(script);
    })()`);
    await expect.poll(() => problems.filter((p) => p.startsWith("CSP violation")).length).toBe(2);
    expect(problems.join("\n")).toMatch(/style-src-elem blocked inline/);
    expect(problems.join("\n")).toMatch(/script-src-elem blocked inline/);
    expect(await page.evaluate("window.inlineRan === true")).toBe(false);
    problems.splice(0);
  });

  afterAll(async () => {
    await context?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("signs in, keeps the session across a reload, and has an admin set up the panel", async () => {
    await page.goto(`${base}/`);
    await page.getByRole("heading", { name: "Keygate" }).waitFor();
    await shot("signin");
    // A wrong password is refused in the server's words.
    await page.getByLabel("Username").fill("admin");
    await page.getByRole("textbox", { name: "Password" }).fill("wrong-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "Not signed in" }).waitFor();
    await signIn("admin", ADMIN_PASSWORD);
    await page.reload();
    await heading("Dashboard"); // restored from the refresh cookie, no sign-in form
    expect(await page.getByTestId("signed-in-as").textContent()).toBe("admin");

    await nav("Users");
    for (const name of ["reseller-a", "reseller-b"]) {
      await page.getByRole("button", { name: "Add a user" }).click();
      const dialog = page.getByRole("dialog");
      await dialog.getByLabel("Username").fill(name);
      await dialog.getByRole("textbox", { name: "Password" }).fill(`${name}-password`);
      await dialog.getByRole("button", { name: "Create user" }).click();
      await dialog.waitFor({ state: "detached" });
      await page.getByRole("cell", { name: name, exact: true }).waitFor();
    }
    await shot("users");

    await nav("Services");
    await page.getByRole("button", { name: "Add a service" }).first().click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill("Fibre 100");
    await dialog.getByLabel("Download (kbit/s)").fill("100000");
    await dialog.getByLabel("Upload (kbit/s)").fill("20000");
    await dialog.getByLabel("Price").fill("30");
    await dialog.getByRole("button", { name: "Create service" }).click();
    await dialog.waitFor({ state: "detached" });
    await page.getByRole("cell", { name: "Fibre 100", exact: true }).waitFor();
    await shot("services");
  }, 60_000);

  it("mints a key, shows it once, and logs the call made with it", async () => {
    await nav("API keys");
    await page.getByRole("button", { name: "Mint a key" }).first().click();
    const form = page.getByRole("dialog");
    await form.getByLabel("Name").fill("billing");
    await form.getByRole("button", { name: "Read and write" }).click();
    // A bad line is refused as it is typed, and nothing is sent.
    await form.getByLabel("Allowed IPs").fill("127.0.0.1\n10.0.0.300");
    await form.getByText(/Line 2 \(10\.0\.0\.300\): not an IPv4/).waitFor();
    await form.getByRole("button", { name: "Mint key", exact: true }).click();
    await page.waitForTimeout(200);
    expect(await form.getByText("Key not minted").count()).toBe(0);
    await form.getByLabel("Allowed IPs").fill("127.0.0.1\n::1");
    await shot("key-form");
    await form.getByRole("button", { name: "Mint key", exact: true }).click();

    keys.first = await readSecret();
    expect(keys.first).toMatch(KEY_RE);
    const curl = await page.getByTestId("show-once-curl").inputValue();
    expect(curl).toBe(`curl -H "X-API-Key: ${keys.first}" ${base}/api/v1/external/whoami`);
    await shot("key-show-once");
    await closeShowOnce();
    await heading(/billing/);
    ids.firstKey = Number(new URL(page.url()).pathname.split("/").pop());
    expect(ids.firstKey).toBeGreaterThan(0);

    const who = await whoami(keys.first);
    expect(who.status).toBe(200);
    expect(who.json.data).toMatchObject({ name: "billing", scopes: "write" });

    await page.getByRole("button", { name: "Refresh" }).click();
    const log = page.getByTestId("call-log");
    await log.getByText("/api/v1/external/whoami").waitFor();
    expect(await log.getByRole("row").count()).toBe(2); // header + the one call
    expect(await log.getByText("200", { exact: true }).count()).toBe(1);

    // The same log as a CSV file, fetched with the session's token.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download CSV" }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^key-\d+-calls\.csv$/);
    const csv = readFileSync(await download.path(), "utf8")
      .trim()
      .split("\n");
    expect(csv[0]).toMatch(/^id,timestamp,method,path,status_code,/);
    expect(csv).toHaveLength(2);
    expect(csv[1]).toContain(",GET,/api/v1/external/whoami,200,");
  }, 60_000);

  it("rolls the key with a grace period, then revokes the old one and sees it refused", async () => {
    await page.getByRole("button", { name: "Roll", exact: true }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("24 hours (default)").check();
    await dialog.getByRole("button", { name: "Roll key" }).click();
    keys.rolled = await readSecret();
    expect(keys.rolled).toMatch(KEY_RE);
    expect(keys.rolled).not.toBe(keys.first);
    await closeShowOnce();
    await heading(/billing/);
    ids.rolledKey = Number(new URL(page.url()).pathname.split("/").pop());
    expect(ids.rolledKey).not.toBe(ids.firstKey);

    // Both work during the grace period.
    expect((await whoami(keys.rolled)).status).toBe(200);
    expect((await whoami(keys.first)).status).toBe(200);

    await page
      .getByRole("link", { name: `key ${ids.firstKey}` })
      .first()
      .click();
    await heading(/billing/);
    await page.getByText("Rolled", { exact: true }).waitFor();
    await page.getByRole("button", { name: "Revoke", exact: true }).click();
    const confirm = page.getByRole("dialog");
    await confirm.getByText("refused from the very next request").waitFor();
    await confirm.getByRole("button", { name: "Revoke key" }).click();
    await confirm.waitFor({ state: "detached" });
    await page.getByRole("heading", { level: 1 }).getByText("revoked").waitFor();

    const refused = await whoami(keys.first);
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe("API_KEY_REVOKED");
    expect((await whoami(keys.rolled)).status).toBe(200);

    await page.getByRole("button", { name: "Refresh" }).click();
    await page.getByTestId("call-log").getByText("API_KEY_REVOKED").waitFor();
    // Filter the log by status: the server answers with only the refusal.
    const filtered = page.waitForResponse(
      (r) =>
        r.url().includes(`/api/api-keys/${ids.firstKey}/logs?`) &&
        r.url().includes("status=refused"),
    );
    await pick(page.locator("main"), "Status", "Refused (401, 403, 429)");
    expect((await filtered).status()).toBe(200);
    await expect.poll(() => page.getByTestId("call-log").getByRole("row").count()).toBe(2);
    await page.getByTestId("call-log").getByText("API_KEY_REVOKED").waitFor();
    await shot("key-detail");

    await nav("API keys");
    await page.getByRole("cell", { name: "revoked", exact: true }).waitFor();
    await shot("keys");
    await nav("Dashboard");
    await page.getByText("Busiest keys").waitFor();
    await page.getByRole("img", { name: /Calls per hour/ }).waitFor();
    await page.getByText("API_KEY_REVOKED").first().waitFor();
    await shot("dashboard");
  }, 60_000);

  it("shows an exposed key's alert in the header's notifications, links to the key, and dismisses it", async () => {
    const login = await call(
      base,
      "POST",
      "/api/auth/login",
      {},
      {
        username: "admin",
        password: ADMIN_PASSWORD,
      },
    );
    const auth = { authorization: `Bearer ${login.json.data.access_token as string}` };
    const minted = await call(base, "POST", "/api/api-keys", auth, { name: "leaked-e2e" });
    expect(minted.status).toBe(201);
    const exposed = await call(
      base,
      "POST",
      "/api/v1/external/keys/revoke-exposed",
      {},
      {
        key: minted.json.key,
      },
    );
    expect(exposed.json.data.status).toBe("revoked");

    await page.reload();
    // Other alerts may be there too (the keys of earlier tests were first used from this
    // address: key.new_ip); this one is among them.
    const bell = page.getByRole("button", { name: /^Notifications: \d+ alerts?$/ });
    await bell.click();
    const alert = page.getByTestId("alert").filter({ hasText: "Exposed key revoked" });
    await alert.getByText(/Key "leaked-e2e" \(pk_live_[0-9a-f]{4}…\) was revoked/).waitFor();
    await shot("notifications");
    await alert.getByRole("link", { name: "Open the key" }).click();
    await heading(/leaked-e2e/);
    expect(new URL(page.url()).pathname).toBe(`/keys/${minted.json.data.id as number}`);

    await bell.click();
    const exposedAlert = page.getByTestId("alert").filter({ hasText: "Exposed key revoked" });
    await page.getByRole("button", { name: "Dismiss: Exposed key revoked" }).click();
    await exposedAlert.waitFor({ state: "detached" });
    // Dismissed for good: after a reload, once the alerts are in, it is not among them.
    await page.reload();
    await page.getByRole("button", { name: /^Notifications: / }).click();
    await page.waitForLoadState("networkidle");
    expect(await exposedAlert.count()).toBe(0);
  }, 60_000);

  it("finds a call by its X-Request-Id and opens it: the exact message, the id to copy", async () => {
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    const requestId = "e2e-billing:run/7+retry=1";
    const res = await fetch(`${base}/api/v1/external/whoami`, {
      headers: { "x-api-key": keys.first, "x-request-id": requestId, "user-agent": "e2e-sync/1.0" },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("x-request-id")).toBe(requestId);
    const message = ((await res.json()) as { error: { message: string } }).error.message;
    expect(message).toMatch(/\S/);

    await page.goto(`${base}/keys/${ids.firstKey}`);
    await heading(/billing/);
    const box = page.getByRole("searchbox", { name: "Request id" });
    // An id the server would refuse is refused here, and not sent.
    await box.fill("not an id!");
    await page.getByText(/A request id holds only letters, digits/).waitFor();
    const found = page.waitForResponse(
      (r) =>
        r.url().includes(`/api/api-keys/${ids.firstKey}/logs?`) &&
        new URL(r.url()).searchParams.get("request_id") === requestId,
    );
    await box.fill(requestId);
    expect((await found).status()).toBe(200);
    const log = page.getByTestId("call-log");
    await expect.poll(() => log.getByRole("row").count()).toBe(2);
    expect(new URL(page.url()).searchParams.get("request_id")).toBe(requestId);

    // The keyboard opens it: the row's call is a button.
    const row = log.getByRole("button", {
      name: /^GET \/api\/v1\/external\/whoami, 401 API_KEY_REVOKED, /,
    });
    await row.focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog");
    await dialog.getByTestId("call-message").waitFor();
    expect(await dialog.getByTestId("call-message").textContent()).toBe(message);
    expect(await dialog.getByTestId("call-request-id").textContent()).toBe(requestId);
    const text = (await dialog.getByTestId("call-detail").textContent()) ?? "";
    expect(text).toMatch(/Time \(UTC\)\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/);
    expect(text).toContain("e2e-sync/1.0");
    expect(text).toContain("API_KEY_REVOKED");
    await dialog.getByRole("button", { name: "Copy request id" }).click();
    await dialog.getByRole("button", { name: "Copied" }).waitFor();
    expect(await page.evaluate("navigator.clipboard.readText()")).toBe(requestId);
    await shot("call-detail");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    // Focus goes back to the row it was opened from.
    // (Typed loosely: these tests compile without the DOM library.)
    const focused = (el: unknown) =>
      el === (el as { ownerDocument: { activeElement: unknown } }).ownerDocument.activeElement;
    expect(await row.evaluate(focused)).toBe(true);

    // An id this key's log does not hold: said so; clearing the box brings the log back.
    await box.fill("0196c3f0-7d1e-7abc-9def-0123456789ab");
    await page
      .getByText("No call with request id 0196c3f0-7d1e-7abc-9def-0123456789ab in this key's log")
      .waitFor();
    await box.fill("");
    await expect.poll(() => log.getByRole("row").count()).toBeGreaterThan(2);
    expect(new URL(page.url()).searchParams.has("request_id")).toBe(false);

    // On a phone the log is a list of cards; a tap opens the call, full screen.
    await page.setViewportSize(PHONE);
    await page.goto(`${base}/keys/${ids.firstKey}?request_id=${encodeURIComponent(requestId)}`);
    await heading(/billing/);
    const cards = page.getByTestId("call-cards");
    await expect.poll(() => cards.getByRole("listitem").count()).toBe(1);
    await cards.getByText("API_KEY_REVOKED").click();
    await dialog.getByTestId("call-message").waitFor();
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(
      PHONE.width,
    );
    await shot("call-detail");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await page.setViewportSize(DESKTOP);
  }, 60_000);

  it("signs out cleanly: a reload does not bring the session back", async () => {
    await signOut();
    await page.reload();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    expect(await page.getByRole("button", { name: "Sign out" }).count()).toBe(0);
  });

  it("lets a reseller add a subscriber with a generated password, refuses it a key, and hides it from another reseller", async () => {
    await signIn("reseller-a", "reseller-a-password");
    await nav("Subscribers");
    await page.getByText("No subscribers yet").waitFor();
    await page.getByRole("button", { name: "Add a subscriber" }).first().click();
    const form = page.getByRole("dialog");
    // The form checks before sending.
    await form.getByRole("button", { name: "Create subscriber" }).click();
    await form.getByText("Enter a username.").waitFor();
    await form.getByText("Choose a service.").waitFor();
    await form.getByLabel("Username").fill("alice-a");
    await pick(form, /^Service/, "Fibre 100");
    await form.getByLabel("Email").fill("alice@example.com");
    await form.getByRole("button", { name: "Create subscriber" }).click();
    const password = await readSecret();
    expect(password).toHaveLength(20);
    await shot("subscriber-show-once");
    await closeShowOnce();
    await heading(/alice-a/);
    ids.subscriber = Number(new URL(page.url()).pathname.split("/").pop());
    await page.getByText("Usage, last 30 days").waitFor();
    await page.getByRole("button", { name: "Record usage" }).click();
    const usage = page.getByRole("dialog");
    await usage.getByLabel("Downloaded (bytes)").fill("5000000000");
    await usage.getByLabel("Uploaded (bytes)").fill("800000000");
    await usage.getByLabel("Online (seconds)").fill("7200");
    await usage.getByRole("button", { name: "Record usage" }).click();
    await usage.waitFor({ state: "detached" });
    await page.getByRole("img", { name: /Bytes downloaded and uploaded/ }).waitFor();
    await page.getByText(/4\.7 GiB down/).waitFor();
    await shot("subscriber-detail");

    await nav("Subscribers");
    await page.getByRole("link", { name: "alice-a" }).waitFor();
    await shot("subscribers");

    // Without KEYGATE_SELF_SERVICE_KEYS a reseller cannot mint: the console says so instead
    // of offering a button that would fail, and the server refuses the call anyway.
    await nav("API keys");
    await page.getByText("Ask an admin to mint keys for you — self-service keys are off").waitFor();
    expect(await page.getByRole("button", { name: /Mint/ }).count()).toBe(0);
    const reseller = await call(
      base,
      "POST",
      "/api/auth/login",
      {},
      { username: "reseller-a", password: "reseller-a-password" },
    );
    const refusedMint = await call(
      base,
      "POST",
      "/api/api-keys",
      { authorization: `Bearer ${reseller.json.data.access_token}` },
      { name: "mine" },
    );
    expect(refusedMint.status).toBe(403);
    expect(refusedMint.json.code).toBe("FORBIDDEN");
    expect(refusedMint.json.message).toContain("KEYGATE_SELF_SERVICE_KEYS");
    await signOut();

    await signIn("reseller-b", "reseller-b-password");
    await nav("Subscribers");
    await page.getByText("No subscribers yet").waitFor();
    await page.getByLabel("Search").fill("alice");
    await page.getByText("No subscriber matches").waitFor();
    await page.goto(`${base}/subscribers/${ids.subscriber}`);
    await page
      .getByRole("alert")
      .getByText(/not found|no subscriber/i)
      .waitFor();
    expect(await page.getByText("alice@example.com").count()).toBe(0);

    const login = await call(
      base,
      "POST",
      "/api/auth/login",
      {},
      {
        username: "reseller-b",
        password: "reseller-b-password",
      },
    );
    const other = await call(base, "GET", `/api/subscribers/${ids.subscriber}`, {
      authorization: `Bearer ${login.json.data.access_token}`,
    });
    expect(other.status).toBe(404);

    // The admin disables reseller-b: its next call fails, the refresh too, and it is told why.
    const admin = await call(
      base,
      "POST",
      "/api/auth/login",
      {},
      {
        username: "admin",
        password: ADMIN_PASSWORD,
      },
    );
    const users = await call(base, "GET", "/api/users", {
      authorization: `Bearer ${admin.json.data.access_token}`,
    });
    const b = (users.json.data as { id: number; username: string }[]).find(
      (u) => u.username === "reseller-b",
    );
    const disabled = await call(
      base,
      "PUT",
      `/api/users/${b?.id}`,
      { authorization: `Bearer ${admin.json.data.access_token}` },
      { disabled: true },
    );
    expect(disabled.status).toBe(200);
    await page
      .getByRole("navigation", { name: "Sections" })
      .getByRole("link", { name: "Services" })
      .click();
    await page.getByText("Session ended").waitFor();
    await page.getByText(/^Your session has ended: .*sign in again/).waitFor();
    await shot("session-ended");
  }, 60_000);

  it("lets the admin record a payment and add a NAS device, and reads well at phone width", async () => {
    await signIn("admin", ADMIN_PASSWORD);
    await nav("Transactions");
    await page.getByRole("button", { name: "Record a transaction" }).first().click();
    const tx = page.getByRole("dialog");
    await pick(tx, /^Subscriber/, "alice-a");
    await tx.getByLabel("Amount").fill("30.00");
    await tx.getByLabel("Reference").fill("INV-1001");
    await tx.getByRole("button", { name: "Record transaction" }).click();
    await tx.waitFor({ state: "detached" });
    await page.getByRole("cell", { name: "INV-1001", exact: true }).waitFor();
    await shot("transactions");

    await nav("NAS devices");
    await page.getByRole("button", { name: "Add a device" }).first().click();
    const nas = page.getByRole("dialog");
    await nas.getByLabel("Name").fill("core-1");
    await nas.getByLabel("IP address").fill("192.0.2.10");
    await nas.getByLabel("Shared secret").fill("radius-secret");
    await nas.getByRole("button", { name: "Add device" }).click();
    await nas.waitFor({ state: "detached" });
    await page.getByRole("cell", { name: "core-1", exact: true }).waitFor();
    await shot("nas");

    await nav("Audit trail");
    await page.getByText("key.revoke").first().waitFor();
    await shot("audit");

    await page.setViewportSize(PHONE);
    const pages: [string, string, string | RegExp][] = [
      ["dashboard", "/", "Dashboard"],
      ["keys", "/keys", "API keys"],
      ["key-detail", `/keys/${ids.rolledKey}`, /billing/],
      ["subscribers", "/subscribers", "Subscribers"],
      ["subscriber-detail", `/subscribers/${ids.subscriber}`, /alice-a/],
      ["services", "/services", "Services"],
      ["transactions", "/transactions", "Transactions"],
      ["nas", "/nas", "NAS devices"],
      ["users", "/users", "Users"],
      ["audit", "/audit", "Audit trail"],
    ];
    for (const [name, path, title] of pages) {
      await page.goto(`${base}${path}`);
      await heading(title);
      // Nothing wider than the screen, and the lists are cards with every column in sight,
      // not tables scrolling sideways.
      const overflow = await page.evaluate("document.documentElement.scrollWidth");
      expect(overflow, name).toBeLessThanOrEqual(PHONE.width);
      if (["transactions", "nas", "users", "services", "audit"].includes(name)) {
        const cards = page.getByTestId("card-list").first();
        await cards.getByRole("listitem").first().waitFor();
        expect(await page.locator("main table").count(), name).toBe(0);
        // A row's buttons are on its card, in reach without scrolling sideways.
        if (["nas", "users", "services"].includes(name)) {
          const button = cards.getByRole("listitem").first().getByRole("button").first();
          const box = await button.boundingBox();
          expect(box && box.x >= 0 && box.x + box.width <= PHONE.width, name).toBe(true);
        }
      }
      if (name === "key-detail") {
        // The call log is cards too, and the usage lists are lists.
        await page.getByTestId("call-cards").getByRole("listitem").first().waitFor();
        await page.getByTestId("usage-totals").waitFor();
        expect(await page.locator("main table").count(), name).toBe(0);
      }
      await shot(name);
    }
    // The navigation folds behind a button on a phone.
    await page.getByRole("button", { name: "Open navigation" }).click();
    await page
      .getByRole("navigation", { name: "Sections" })
      .getByRole("link", { name: "API keys" })
      .click();
    await heading("API keys");
    await page.goto(`${base}/keys?new=1`);
    await page.getByRole("dialog").getByLabel("Name").waitFor();
    await shot("key-form");
    await page.goto(`${base}/`);
    await heading("Dashboard");
    await signOut();
    await shot("signin");
  }, 90_000);

  it("shows test data behind the Test data switch: a banner and an accent on every page, and each environment's subscribers only", async () => {
    await page.setViewportSize(DESKTOP);
    await page.goto(`${base}/`);
    await signIn("admin", ADMIN_PASSWORD);
    await heading("Dashboard");
    const switchOn = page.getByRole("switch", { name: "Test data" });
    expect(await switchOn.isChecked()).toBe(false);
    await expectEnvironment("live");
    await nav("Subscribers");
    await page.getByRole("link", { name: "alice-a", exact: true }).waitFor();
    const liveAccent = await accent();

    await setTestData(true);
    // The list is fetched again, in test: the live subscriber is not in it.
    await page.getByText("No subscribers yet").waitFor();
    expect(await page.getByRole("link", { name: "alice-a" }).count()).toBe(0);
    // A page of test data never looks like live data: the primary colour is another, and
    // the header's border takes it.
    const testAccent = await accent();
    expect(liveAccent.button).toMatch(/^rgb/);
    expect(liveAccent.border).toBe("");
    expect(testAccent.button).toMatch(/^rgb/);
    expect(testAccent.button).not.toBe(liveAccent.button);
    expect(testAccent.button).toBe(testAccent.border);
    for (const label of [
      "Dashboard",
      "API keys",
      "Services",
      "Transactions",
      "NAS devices",
      "Users",
      "Audit trail",
      "Subscribers",
    ]) {
      await nav(label);
      await expectEnvironment("test", label);
    }
    await shot("test-data-subscribers");

    // A subscriber created in test is listed in test, and not in live.
    await addSubscriber(names.test);
    await expectEnvironment("test");
    await nav("Subscribers");
    await page.getByRole("link", { name: names.test, exact: true }).waitFor();
    expect(await page.getByRole("link", { name: "alice-a" }).count()).toBe(0);
    await setTestData(false);
    await page.getByRole("link", { name: "alice-a", exact: true }).waitFor();
    expect(await page.getByRole("link", { name: names.test }).count()).toBe(0);

    // And the other way round: one created in live is not listed in test.
    await addSubscriber(names.live);
    await expectEnvironment("live");
    await nav("Subscribers");
    await page.getByRole("link", { name: names.live, exact: true }).waitFor();
    await setTestData(true);
    await page.getByRole("link", { name: names.test, exact: true }).waitFor();
    expect(await page.getByRole("link", { name: names.live }).count()).toBe(0);
    expect(await page.getByRole("link", { name: "alice-a" }).count()).toBe(0);

    // The choice outlives the page.
    await page.reload();
    await heading("Subscribers");
    expect(await switchOn.isChecked()).toBe(true);
    await expectEnvironment("test");
    await page.getByRole("link", { name: names.test, exact: true }).waitFor();
    expect(await page.getByRole("link", { name: names.live }).count()).toBe(0);
  }, 60_000);

  it("mints a test key with the Billing preset, and the key reads test data with exactly those permissions", async () => {
    await nav("API keys");
    await page.getByRole("button", { name: "Mint a key" }).first().click();
    const form = page.getByRole("dialog");
    await form
      .getByTestId("key-environment")
      .getByText("This key will be a test key (pk_test_…)")
      .waitFor();
    await form.getByLabel("Name").fill("billing-test");
    const preset = form
      .getByRole("group", { name: "Presets" })
      .getByRole("button", { name: "Billing", exact: true });
    await preset.click();
    await expect.poll(() => preset.getAttribute("aria-pressed")).toBe("true");
    await form
      .getByText("Billing: reads subscribers and their usage, posts payments and refunds")
      .waitFor();
    // The grid shows the preset, write including read.
    const ticked: string[] = [];
    const boxes = form.getByTestId("permission-grid").getByRole("checkbox");
    for (let i = 0; i < (await boxes.count()); i++) {
      const box = boxes.nth(i);
      if (await box.isChecked()) ticked.push((await box.getAttribute("aria-label")) ?? "");
    }
    expect(ticked).toEqual([
      "Subscribers: read",
      "Transactions: read",
      "Transactions: write",
      "Usage: read",
    ]);
    expect(await form.getByTestId("permission-summary").textContent()).toBe(
      "Can read subscribers and usage and post transactions; cannot delete anything. No access to services, NAS devices or stats.",
    );
    await shot("key-form-billing");
    await form.getByRole("button", { name: "Mint key", exact: true }).click();

    const key = await readSecret();
    expect(key).toMatch(/^pk_test_[0-9a-f]{32}$/);
    const named = page.getByRole("dialog").getByTestId("show-once-environment");
    await named.getByText("Test key — works only on test data").waitFor();
    expect(await named.textContent()).toContain("It starts pk_test_");
    await shot("key-show-once-test");
    await closeShowOnce();
    await heading(/billing-test/);
    await expectEnvironment("test");
    keys.test = key;

    const who = await fetch(`${base}/api/v1/external/whoami`, { headers: { "x-api-key": key } });
    expect(who.status).toBe(200);
    expect(who.headers.get("keygate-environment")).toBe("test");
    const me = ((await who.json()) as { data: { environment: string; permissions: string[] } })
      .data;
    expect(me.environment).toBe("test");
    expect(me.permissions).toEqual(["subscribers:read", "transactions:write", "usage:read"]);

    // No subscribers:write: creating one is refused, and the answer names what was needed.
    const created = await fetch(`${base}/api/v1/external/subscribers`, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json" },
      body: JSON.stringify({ username: "not-made", password: "auto-generate", service_id: 1 }),
    });
    expect(created.status).toBe(403);
    expect(created.headers.get("x-accepted-permissions")).toBe("subscribers:write");
    expect(created.headers.get("keygate-environment")).toBe("test");
    expect(((await created.json()) as { error: { code: string } }).error.code).toBe(
      "SCOPE_REQUIRED",
    );

    // It reads the test subscriber only, and may post a test payment for it.
    const listed = await call(base, "GET", "/api/v1/external/subscribers", { "x-api-key": key });
    expect(listed.status).toBe(200);
    const rows = listed.json.data as { id: number; username: string }[];
    expect(rows.map((s) => s.username)).toEqual([names.test]);
    const paid = await call(
      base,
      "POST",
      "/api/v1/external/transactions",
      { "x-api-key": key },
      { subscriber_id: rows[0]?.id, amount: 9.5, reference: "TEST-1" },
    );
    expect(paid.status).toBe(201);
  }, 60_000);

  it("resets test data from the dashboard after asking, and leaves live data alone", async () => {
    await nav("Dashboard");
    await heading("Dashboard: test data");
    // The counts are of test data: the one test subscriber, active.
    const counted = page
      .locator(".mantine-Card-root")
      .filter({ has: page.getByRole("link", { name: "Test subscribers", exact: true }) });
    await expect.poll(() => counted.textContent()).toBe("Test subscribers11 active");
    const reset = page.getByRole("button", { name: "Reset test data" });
    const listTest = async () =>
      (
        (await call(base, "GET", "/api/v1/external/subscribers", { "x-api-key": keys.test })).json
          .data as { username: string }[]
      ).map((s) => s.username);

    // It asks first; cancelling deletes nothing.
    await reset.click();
    const confirm = page.getByRole("dialog", { name: "Reset test data?" });
    await confirm.getByText("Live data is never touched.").waitFor();
    await shot("reset-test-data");
    await confirm.getByRole("button", { name: "Cancel" }).click();
    await confirm.waitFor({ state: "detached" });
    expect(await listTest()).toEqual([names.test]);

    await reset.click();
    await confirm.getByRole("button", { name: "Delete test data" }).click();
    await confirm.waitFor({ state: "detached" });
    const result = page.getByTestId("reset-result");
    await result.waitFor();
    expect(await result.getAttribute("role")).toBe("status");
    expect(await result.textContent()).toContain(
      "Deleted 1 test subscriber, 1 test transaction and 0 test usage records. Live data was not touched.",
    );
    await expectEnvironment("test");
    await expect.poll(() => counted.textContent()).toBe("Test subscribers00 active");
    expect(await listTest()).toEqual([]);

    await nav("Subscribers");
    await page.getByText("No subscribers yet").waitFor();
    await setTestData(false);
    await page.getByRole("link", { name: "alice-a", exact: true }).waitFor();
    await page.getByRole("link", { name: names.live, exact: true }).waitFor();
    expect(await page.getByRole("link", { name: names.test }).count()).toBe(0);
    await nav("Transactions");
    await page.getByRole("cell", { name: "INV-1001", exact: true }).waitFor();
    expect(await page.getByRole("cell", { name: "TEST-1" }).count()).toBe(0);
  }, 60_000);

  it("charts a key's usage by range, and revokes two keys at once from the list", async () => {
    await page.setViewportSize(DESKTOP);
    const login = await call(
      base,
      "POST",
      "/api/auth/login",
      {},
      {
        username: "admin",
        password: ADMIN_PASSWORD,
      },
    );
    const bearer = { authorization: `Bearer ${login.json.data.access_token}` };
    const mint = async (name: string) => {
      const res = await call(base, "POST", "/api/api-keys", bearer, { name });
      expect(res.status).toBe(201);
      return { key: res.json.key as string, id: res.json.data.id as number };
    };
    const a = await mint("usage-a");
    const b = await mint("usage-b");
    for (let i = 0; i < 3; i++) expect((await whoami(a.key)).status).toBe(200);
    const missing = await call(base, "GET", "/api/v1/external/subscribers/999999", {
      "x-api-key": a.key,
    });
    expect(missing.status).toBe(404);

    await page.goto(`${base}/keys/${a.id}`);
    await heading(/usage-a/);
    const usage = page.getByTestId("usage");
    const totals = usage.getByTestId("usage-totals");
    await totals.waitFor();
    expect(await totals.textContent()).toMatch(/^Calls4/);
    await usage.locator(".recharts-area").first().waitFor();
    await usage.locator(".recharts-line").first().waitFor({ state: "attached" });
    await usage.getByRole("list", { name: "Busiest addresses" }).getByText("127.0.0.1").waitFor();

    // The switch asks again: 30 days, by day.
    const [asked] = await Promise.all([
      page.waitForRequest(
        (r) =>
          r.url().includes(`/api/api-keys/${a.id}/usage?`) &&
          new URL(r.url()).searchParams.get("bucket") === "day",
      ),
      usage.getByText("30 d", { exact: true }).click(),
    ]);
    const q = new URL(asked.url()).searchParams;
    const days = (Date.parse(q.get("to") ?? "") - Date.parse(q.get("from") ?? "")) / 86_400_000;
    expect(days).toBe(30);
    await totals.waitFor();
    expect(await totals.textContent()).toMatch(/^Calls4/);
    await shot("key-usage");

    await nav("API keys");
    await page.getByRole("checkbox", { name: /^Select usage-a / }).check();
    await page.getByRole("checkbox", { name: /^Select usage-b / }).check();
    await page.getByTestId("bulk-bar").getByRole("button", { name: "Revoke selected" }).click();
    const dialog = page.getByRole("dialog", { name: "Revoke 2 keys?" });
    await dialog.getByText("usage-b").waitFor();
    await dialog.getByRole("button", { name: "Revoke 2 keys" }).click();
    await page.getByText("2 keys revoked").waitFor();
    for (const k of [a, b]) {
      const refused = await whoami(k.key);
      expect(refused.status).toBe(401);
      expect(refused.json.error.code).toBe("API_KEY_REVOKED");
    }
    await page
      .getByTestId(`key-row-${a.id}`)
      .getByText(/^revoked$/i)
      .waitFor();
  }, 60_000);

  it("shows the API reference under its own policy", async () => {
    await page.setViewportSize(DESKTOP);
    const res = await page.goto(`${base}/docs`);
    const csp = (await res?.allHeaders())?.["content-security-policy"] ?? "";
    expect(csp).toMatch(/script-src 'self';/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    await page.getByRole("heading", { name: /Keygate API/ }).waitFor();
    // Open an operation and call it from the page: the answer is the surface's own refusal.
    await page.locator(".opblock-summary", { hasText: "/api/v1/external/whoami" }).first().click();
    await page.getByRole("button", { name: "Try it out" }).click();
    await page.getByRole("button", { name: "Execute" }).click();
    await page.locator(".live-responses-table").getByText("MISSING_API_KEY").first().waitFor();
    await shot("docs");
    expect(await page.title()).toBe("Keygate API reference");

    // The external surface on its own page: the integrator's routes and none of the people's.
    await page.goto(`${base}/docs/external`);
    await page.getByRole("heading", { name: /Keygate external API/ }).waitFor();
    await page
      .locator(".opblock-summary", { hasText: "/api/v1/external/whoami" })
      .first()
      .waitFor();
    expect(await page.locator(".opblock-summary", { hasText: "/api/auth/login" }).count()).toBe(0);
    expect(await page.title()).toBe("Keygate external API reference");
    await shot("docs-external");
  });
});
