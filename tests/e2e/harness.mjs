// End-to-end harness: drives the REAL app (the binary `tauri build --debug --no-bundle` made,
// UI embedded) through tauri-driver, which spawns WebKitWebDriver. Needs an X display (Xvfb).
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { remote } from "webdriverio";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const artifacts = path.join(root, "tests/artifacts");

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`tauri-driver exited with ${child.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/status`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tauri-driver did not listen on ${port} within ${ms} ms`);
}

/**
 * Starts tauri-driver and opens a WebDriver session on the app with `args`.
 * Returns { browser, stop }.
 */
export async function startApp(args = []) {
  const application =
    process.env.HOTPATCH_APP ??
    path.join(process.env.CARGO_TARGET_DIR ?? path.join(homedir(), ".cache/hotpatch-studio/target"), "debug/hotpatch-studio");
  if (!existsSync(application)) {
    throw new Error(`app binary ${application} missing: build it with 'npx tauri build --debug --no-bundle'`);
  }
  if (!process.env.DISPLAY) throw new Error("no DISPLAY: run under xvfb-run (scripts/test.sh does)");
  mkdirSync(artifacts, { recursive: true });
  // Keep the user's recent-files list out of tests: the app reads $HOTPATCH_RECENT (inherited
  // through tauri-driver). A test that checks the list sets its own.
  if (!process.env.HOTPATCH_RECENT) {
    process.env.HOTPATCH_RECENT = path.join(mkdtempSync(path.join(tmpdir(), "hotpatch-recent-")), "recent.json");
  }
  const port = await freePort();
  const nativePort = await freePort();
  const driverBin = process.env.TAURI_DRIVER ?? path.join(homedir(), ".cargo/bin/tauri-driver");
  // Its own process group: tauri-driver, WebKitWebDriver and the app it launches all end
  // with the group, even if a session is left open by a failing test.
  const driver = spawn(driverBin, ["--port", String(port), "--native-port", String(nativePort)], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  driver.stdout.on("data", (d) => process.stderr.write(`[driver] ${d}`));
  driver.stderr.on("data", (d) => process.stderr.write(`[driver] ${d}`));
  const killGroup = async () => {
    for (const sig of ["SIGTERM", "SIGKILL"]) {
      try {
        process.kill(-driver.pid, sig);
      } catch {
        return; // group already gone
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  try {
    await waitForPort(port, driver, 15000);
    const browser = await remote({
      hostname: "127.0.0.1",
      port,
      logLevel: "error",
      connectionRetryCount: 0,
      // No browserName: with "wry" WebKitWebDriver refuses the session (see NOTES).
      capabilities: { "tauri:options": { application, args } },
    });
    const stop = async () => {
      try {
        await browser.deleteSession();
      } finally {
        await killGroup();
      }
    };
    return { browser, stop };
  } catch (e) {
    await killGroup();
    throw e;
  }
}

/**
 * Replaces the text of an input or textarea as a user does: select all, delete, type. WebDriver's
 * `clearValue` sets the DOM value without an input event, so a React re-render in between
 * restores the old text (a CI run typed "abc0xffffffffff" into a field holding "abc").
 */
export async function fill(browser, el, value) {
  await el.click();
  await browser.keys(["Control", "a"]);
  await browser.keys(["Backspace"]);
  await browser.waitUntil(async () => (await el.getValue()) === "", { timeout: 3000, timeoutMsg: "the field did not clear" });
  await el.addValue(value);
}
