// The Server screen, driven for real: start the proxy from the UI in front of the scripted
// upstream (tests/oracle/openai-server.mjs: real llama.cpp inference over the demo model),
// add a system-prompt rule in the UI, send requests with node's fetch to the proxy. The
// upstream itself reports what it received (/__last_request), so the injected prompt is checked
// by the server, not by the app; the request log must show each request and a cache hit.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { createServer } from "node:net";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const demo = path.join(root, "demo/hotpatch-demo.gguf");

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

/** Starts the scripted upstream; resolves to { url, child } once it prints its port. */
function startUpstream() {
  const child = spawn("node", [path.join(root, "tests/oracle/openai-server.mjs"), demo, "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("openai-server.mjs did not start within 120 s")), 120000);
    child.once("exit", (code) => reject(new Error(`openai-server.mjs exited with ${code}`)));
    createInterface({ input: child.stdout }).once("line", (line) => {
      clearTimeout(timer);
      resolve({ url: `http://127.0.0.1:${JSON.parse(line).port}`, child });
    });
  });
}

async function setField(browser, testId, value) {
  const el = await browser.$(`[data-testid="${testId}"]`);
  await el.waitForEnabled({ timeout: 10000 });
  await fill(browser, el, value);
}

async function click(browser, testId) {
  const el = await browser.$(`[data-testid="${testId}"]`);
  await el.waitForClickable({ timeout: 10000 });
  await el.click();
}

async function logRows(browser) {
  return browser.execute(() =>
    [...document.querySelectorAll('[data-testid="log-row"]')].map((r) => ({
      path: r.getAttribute("data-path"),
      cache: r.getAttribute("data-cache"),
      rules: r.getAttribute("data-rules"),
    })),
  );
}

describe("Server screen: proxy, rules, request log (real app under Xvfb)", () => {
  let app;
  let browser;
  let upstream;
  let proxyPort;

  before(async () => {
    upstream = await startUpstream();
    proxyPort = await freePort();
    app = await startApp([demo]);
    browser = app.browser;
    await click(browser, "nav-server");
    await browser.$('[data-testid="screen-server"]').waitForDisplayed({ timeout: 20000 });
  });

  after(async () => {
    await app?.stop();
    upstream?.child.kill();
  });

  it("starts the proxy in front of the upstream", async () => {
    await setField(browser, "server-upstream", upstream.url);
    await click(browser, "server-check");
    const check = await browser.$('[data-testid="server-check-result"]');
    await check.waitForDisplayed({ timeout: 10000 });
    assert.match(await check.getText(), /accepts connections/);
    await setField(browser, "server-bind", "127.0.0.1");
    await setField(browser, "server-port", String(proxyPort));
    await click(browser, "server-start");
    const status = await browser.$('[data-testid="server-status"]');
    await browser.waitUntil(async () => (await status.getAttribute("data-running")) === "true", {
      timeout: 10000,
      timeoutMsg: "the proxy did not start",
    });
    assert.equal(await status.getText(), `Listening on http://127.0.0.1:${proxyPort}`);
    const models = await fetch(`http://127.0.0.1:${proxyPort}/v1/models`);
    assert.equal(models.status, 200, "other paths pass through to the upstream");
  });

  it("injects the system prompt a rule added in the UI says, and logs the request", async () => {
    await click(browser, "rule-add");
    await browser.$('[data-testid="rule-editor"]').waitForDisplayed();
    // A bad value first: the form says what is wrong next to the field.
    await setField(browser, "rule-id", "pirate voice");
    await click(browser, "rule-save");
    const fieldErrors = await browser.execute(() => [...document.querySelectorAll(".field-error")].map((e) => e.textContent));
    assert.ok(fieldErrors.some((t) => /spaces/.test(t)), `id error shown: ${fieldErrors}`);
    assert.ok(fieldErrors.some((t) => /prompt/.test(t)), `prompt error shown: ${fieldErrors}`);
    await setField(browser, "rule-id", "pirate");
    await fill(browser, await browser.$('[data-testid="rule-text"]'), "You are a pirate. Answer in pirate speak.");
    await click(browser, "rule-save");
    await browser.$('[data-testid="rule-row-pirate"]').waitForDisplayed({ timeout: 10000 });

    const body = { model: "demo", messages: [{ role: "user", content: "Hello" }], max_tokens: 4 };
    const res = await fetch(`http://127.0.0.1:${proxyPort}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const answer = await res.json();
    assert.equal(typeof answer.choices[0].message.content, "string");

    const last = await (await fetch(`${upstream.url}/__last_request`)).json();
    assert.deepEqual(
      last.body.messages,
      [
        { role: "system", content: "You are a pirate. Answer in pirate speak." },
        { role: "user", content: "Hello" },
      ],
      "the upstream received the prompt the UI's rule injects, before the user's message",
    );

    await browser.waitUntil(async () => (await logRows(browser)).some((r) => r.path === "/v1/chat/completions"), {
      timeout: 10000,
      timeoutMsg: "the request never showed in the log",
    });
    const rows = await logRows(browser);
    assert.deepEqual(rows[0], { path: "/v1/chat/completions", cache: "miss", rules: "pirate" }, "newest first, rule named");
    assert.equal(rows[1]?.path, "/v1/models", "the pass-through request is logged too");
    assert.equal(rows[1]?.cache, "pass");
    await browser.waitUntil(async () => (await browser.$('[data-testid="rule-hits-pirate"]').getText()) === "1", {
      timeout: 5000,
      timeoutMsg: "the rule's hit counter did not reach 1",
    });
  });

  it("answers an identical request from the cache once it is on, and logs the hit", async () => {
    await click(browser, "cache-enabled");
    await browser.waitUntil(async () => (await browser.$('[data-testid="cache-enabled"]').isSelected()) === true, {
      timeout: 5000,
    });
    const body = JSON.stringify({ model: "demo", messages: [{ role: "user", content: "Ahoy" }], max_tokens: 4 });
    const send = () =>
      fetch(`http://127.0.0.1:${proxyPort}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
    const first = await send();
    const firstText = await first.text();
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-hotpatch-cache"), null, "the first one goes upstream");
    const firstId = (await (await fetch(`${upstream.url}/__last_request`)).json()).headers["x-hotpatch-request-id"];
    const second = await send();
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("x-hotpatch-cache"), "hit", "the proxy says it answered from its cache");
    assert.equal(await second.text(), firstText, "the cached answer is the same answer");
    const lastId = (await (await fetch(`${upstream.url}/__last_request`)).json()).headers["x-hotpatch-request-id"];
    assert.equal(lastId, firstId, "the upstream did not receive the second request");

    await browser.waitUntil(async () => (await logRows(browser))[0]?.cache === "hit", {
      timeout: 10000,
      timeoutMsg: "the cache hit never showed in the log",
    });
    const rows = await logRows(browser);
    assert.equal(rows[1].cache, "miss", "the first identical request was a miss");
    const badge = await browser.$('[data-testid="log-row"] .badge.ok');
    assert.equal(await badge.getText(), "CACHE HIT");
    const stats = await browser.$('[data-testid="cache-stats"]');
    await browser.waitUntil(async () => (await stats.getAttribute("data-hits")) === "1", {
      timeout: 5000,
      timeoutMsg: "the cache counters never showed the hit",
    });
    assert.equal(await stats.getAttribute("data-misses"), "1");
    assert.equal(await stats.getAttribute("data-entries"), "1");
    await browser.saveScreenshot(path.join(artifacts, "server.png"));
    // Emptying the cache sends the next identical request upstream again.
    await click(browser, "cache-clear");
    await browser.waitUntil(async () => (await stats.getAttribute("data-entries")) === "0", { timeout: 5000 });
    const third = await send();
    assert.equal(third.status, 200);
    assert.equal(third.headers.get("x-hotpatch-cache"), null, "after emptying, a miss");
    await third.text();
  });

  it("refuses a bad port next to the field and stops the proxy", async () => {
    await click(browser, "server-stop");
    const status = await browser.$('[data-testid="server-status"]');
    await browser.waitUntil(async () => (await status.getAttribute("data-running")) === "false", { timeout: 10000 });
    await assert.rejects(fetch(`http://127.0.0.1:${proxyPort}/v1/models`), "nothing listens after Stop");
    await setField(browser, "server-port", "99999");
    await click(browser, "server-save-address");
    const err = await browser.$('[data-testid="server-error"]');
    await err.waitForDisplayed({ timeout: 5000 });
    assert.match(await err.getText(), /99999/);
  });
});
