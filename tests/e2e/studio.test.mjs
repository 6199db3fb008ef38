// The studio window, driven for real: the demo model opens at launch, its tensor list shows,
// commands round-trip through Tauri IPC, progress streams to the status bar, and a bad file
// shows the backend's typed error. Expected values come from gguf-py reading the same file.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const demo = path.join(root, "demo/hotpatch-demo.gguf");
const smol = path.join(root, "demo/SmolLM2-135M-Instruct.Q4_1.gguf");
const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");

/** gguf-py (llama.cpp's reader) on the demo model: the oracle for what the UI must show. */
function oracle(file) {
  const script = `
import sys, json
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
print(json.dumps({"tensors": [[t.name, t.tensor_type.name, int(t.data_offset)] for t in r.tensors],
                  "kv": len(r.fields) - 3}))`;
  return JSON.parse(execFileSync(python, ["-c", script, file], { encoding: "utf8" }));
}

describe("Hotpatch Studio (real app under Xvfb)", () => {
  let app;
  let browser;
  const expected = oracle(demo);

  before(async () => {
    app = await startApp([demo]);
    browser = app.browser;
  });

  after(async () => {
    await app?.stop();
  });

  it("starts and shows the demo model's tensors, grouped by block", async () => {
    await browser.waitUntil(async () => (await browser.$$('[data-testid="tensor-item"]')).length > 0, {
      timeout: 20000,
      timeoutMsg: "the tensor list never appeared: the startup model did not open",
    });
    const names = await browser.execute(() =>
      [...document.querySelectorAll('[data-testid="tensor-item"]')].map((e) => e.getAttribute("data-name")),
    );
    // The tree shows tensors outside any block first, then blk.0, blk.1, ... each in file order.
    const all = expected.tensors.map((t) => t[0]);
    const blockOf = (n) => (/^blk\.(\d+)\./.exec(n) ? Number(/^blk\.(\d+)\./.exec(n)[1]) : -1);
    const grouped = all
      .map((n, i) => [blockOf(n), i, n])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      .map((x) => x[2]);
    assert.deepEqual(names, grouped, "the tree lists every tensor gguf-py reads: global ones, then by block");
    const count = await browser.$('[data-testid="tensor-count"]').getText();
    assert.equal(count, `${expected.tensors.length} tensors`);
    const groups = await browser.execute(() =>
      [...document.querySelectorAll('[data-testid="tensor-group"]')].map((e) => e.getAttribute("data-group")),
    );
    assert.deepEqual(groups, ["global", "blk.0", "blk.1", "blk.2", "blk.3"], "global first, then blocks in order");
    const title = await browser.$('[data-testid="model-title"]').getText();
    assert.match(title, /llama/, "the architecture chip shows general.architecture");
  });

  it("round-trips a command through Tauri IPC", async () => {
    const summary = await browser.executeAsync((done) => {
      window.__TAURI_INTERNALS__
        .invoke("model_summary")
        .then((s) => done({ ok: s }))
        .catch((e) => done({ err: e }));
    });
    assert.ok(summary.ok, `model_summary failed: ${JSON.stringify(summary.err)}`);
    assert.equal(summary.ok.tensorCount, expected.tensors.length, "tensor count from the Rust reader");
    assert.equal(summary.ok.fileSize, statSync(demo).size, "file size as the filesystem reports it");
    assert.equal(summary.ok.architecture, "llama");
    assert.equal(summary.ok.metadataCount, expected.kv, "metadata count as gguf-py reads it");
  });

  it("returns raw bytes (an ArrayBuffer, not JSON numbers) from a binary command", async () => {
    const t = expected.tensors.find((x) => x[0] === "blk.1.attn_q.weight");
    const got = await browser.executeAsync((offset, done) => {
      window.__TAURI_INTERNALS__
        .invoke("read_bytes", { shard: 0, offset, len: 32 })
        .then((b) => done({ isBuffer: b instanceof ArrayBuffer, bytes: Array.from(new Uint8Array(b)) }))
        .catch((e) => done({ err: e }));
    }, t[2]);
    assert.ok(!got.err, `read_bytes failed: ${JSON.stringify(got.err)}`);
    assert.equal(got.isBuffer, true, "the body arrives as an ArrayBuffer");
    const onDisk = [...readFileSync(demo).subarray(t[2], t[2] + 32)];
    assert.deepEqual(got.bytes, onDisk, "the bytes of blk.1.attn_q.weight as the file holds them");
    const bad = await browser.executeAsync((done) => {
      window.__TAURI_INTERNALS__
        .invoke("read_bytes", { shard: 0, offset: 0, len: 1e12 })
        .then(() => done({ ok: true }))
        .catch((e) => done({ err: e }));
    });
    assert.equal(bad.err?.code, "BadRequest", "an oversized read is refused with a typed error");
  });

  it("switches screens from the nav rail", async () => {
    for (const name of ["model", "diff", "bytes", "server", "patches", "tensors"]) {
      await browser.$(`[data-testid="nav-${name}"]`).click();
      await browser.$(`[data-testid="screen-${name}"]`).waitForExist({ timeout: 5000, timeoutMsg: `screen ${name} did not show` });
      assert.equal(await browser.$(`[data-testid="nav-${name}"]`).getAttribute("aria-current"), "page");
    }
  });

  it("shows a tensor's details when it is clicked", async () => {
    const [name, ty, offset] = expected.tensors.find((t) => t[0] === "blk.1.attn_q.weight");
    await browser.$(`[data-testid="tensor-item"][data-name="${name}"]`).click();
    await browser.waitUntil(async () => (await browser.$('[data-testid="detail-name"]').getText()) === name, {
      timeout: 5000,
      timeoutMsg: "details did not switch to the clicked tensor",
    });
    assert.equal(await browser.$('[data-testid="detail-type"]').getText(), ty);
    const shownOffset = await browser.$('[data-testid="detail-offset"]').getText();
    assert.ok(
      shownOffset.startsWith(`0x${offset.toString(16).padStart(8, "0")}`),
      `offset ${shownOffset} must be gguf-py's ${offset}`,
    );
  });

  it("streams open progress over a channel to the status bar", async () => {
    // Every line the status bar shows from now on, with its progress count. Other jobs (the
    // Model screen's load measurement, statistics) may show after the open on a slow host: the
    // open's own lines are picked out of the record, not read as "the last line".
    await browser.execute(() => {
      const el = document.querySelector('[data-testid="status-message"]');
      const seen = [];
      window.__statusSeen = seen;
      const note = () => seen.push([el.textContent ?? "", el.getAttribute("data-progress-count") ?? ""]);
      new MutationObserver(note).observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
    });
    await fill(browser, await browser.$('[data-testid="open-path"]'), demo);
    await browser.$('[data-testid="open-button"]').click();
    await browser.waitUntil(
      async () => (await browser.execute(() => window.__statusSeen.some(([t]) => t.startsWith("opened ")))),
      { timeout: 20000, timeoutMsg: "the open's last progress line never reached the status bar" },
    );
    const seen = await browser.execute(() => window.__statusSeen);
    const opened = seen.filter(([t]) => t.startsWith("opened "));
    assert.equal(opened[0][0], `opened ${demo}`, "the last Progress message (stage done) reached the UI");
    for (const [, n] of opened) assert.equal(Number(n), 3, "parse, index and done were each streamed once");
  });

  it("saves a screenshot of the studio", async () => {
    await browser.$('[data-testid="tensor-item"][data-name="blk.0.attn_q.weight"]').click();
    const file = path.join(artifacts, "studio.png");
    await browser.saveScreenshot(file);
    assert.ok(statSync(file).size > 20000, "a real screenshot, not a blank image");
  });

  it("shows the backend's error for a file that is not GGUF", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-e2e-"));
    const bad = path.join(dir, "notes.txt");
    writeFileSync(bad, "these are notes, not a model\n");
    const input = await browser.$('[data-testid="open-path"]');
    await fill(browser, input, bad);
    await browser.$('[data-testid="open-button"]').click();
    const banner = await browser.$('[data-testid="error-banner"]');
    await banner.waitForDisplayed({ timeout: 10000, timeoutMsg: "no error banner for a non-GGUF file" });
    assert.equal(await banner.getAttribute("data-code"), "NotGguf", "the UI branches on the typed code");
    const message = await browser.$('[data-testid="error-message"]').getText();
    assert.ok(message.includes("not a GGUF file"), `backend message shown verbatim: ${message}`);
    assert.ok(message.includes(bad), `the message names the file: ${message}`);
    const names = await browser.$$('[data-testid="tensor-item"]');
    assert.equal(names.length, expected.tensors.length, "a failed open keeps the open model");
    const status = await browser.execute(
      () => document.querySelector('[data-testid="status-message"]')?.textContent ?? "",
    );
    assert.equal(status, `could not open ${bad}`, "the status bar says the open failed");
    await browser.saveScreenshot(path.join(artifacts, "studio-error.png"));
  });

  const scratch = mkdtempSync(path.join(tmpdir(), "hotpatch-e2e-studio-"));
  const status = () => browser.execute(() => document.querySelector('[data-testid="status-message"]')?.textContent ?? "");
  const modified = () => browser.execute(() => document.querySelector('[data-testid="modified-indicator"]')?.textContent ?? "");
  const openPath = (p) => browser.execute(() => document.querySelector('[data-testid="model-title"] .model-path')?.getAttribute("title") ?? "").then((t) => t === p);
  async function openFile(p) {
    await fill(browser, await browser.$('[data-testid="open-path"]'), p);
    await browser.$('[data-testid="open-button"]').click();
  }

  it("says a directory opened as a model is a directory, naming it", async () => {
    const dir = path.join(scratch, "folder.gguf");
    mkdirSync(dir);
    await openFile(dir);
    const banner = await browser.$('[data-testid="error-banner"]');
    await browser.waitUntil(async () => (await browser.$('[data-testid="error-message"]').getText().catch(() => "")).includes(dir), {
      timeout: 10000,
      timeoutMsg: "no error naming the directory",
    });
    assert.ok(await banner.isDisplayed());
    const message = await browser.$('[data-testid="error-message"]').getText();
    assert.match(message, /is a directory, not a GGUF file/, message);
    assert.doesNotMatch(message, /os error 19|No such device/, message);
  });

  it("never shows a job of a model no longer open in the status bar (another model opened mid-job)", async (t) => {
    if (!existsSync(smol)) {
      t.skip("no SmolLM2 model in demo/");
      return;
    }
    await openFile(smol);
    await browser.waitUntil(() => openPath(smol), { timeout: 30000, timeoutMsg: "SmolLM2 did not open" });
    await browser.$('[data-testid="nav-tensors"]').click();
    // The biggest tensor: its statistics run long enough in this build to open another model meanwhile.
    await browser.$('[data-testid="tensor-item"][data-name="token_embd.weight"]').click();
    const copy = path.join(scratch, "demo-copy.gguf");
    copyFileSync(demo, copy);
    // Mid-job: the statistics started (shown or still in their quiet period).
    await browser.pause(150);
    await openFile(copy);
    await browser.waitUntil(() => openPath(copy), { timeout: 30000, timeoutMsg: "the demo copy did not open" });
    const seen = [];
    for (let i = 0; i < 30; i++) {
      seen.push(await status());
      await browser.pause(200);
    }
    const stale = seen.filter((m) => m.includes("token_embd"));
    assert.deepEqual(stale, [], `the status bar showed the old model's job: ${JSON.stringify([...new Set(seen)])}`);
  });

  it("'Modified' clears when undo returns to the saved state, and redo sets it again", async () => {
    const copy = path.join(scratch, "demo-copy.gguf");
    assert.ok(await openPath(copy), "the demo copy is open (previous test)");
    const setWeight = (value) =>
      browser.executeAsync((v, done) => {
        window.__TAURI_INTERNALS__
          .invoke("set_weight", { args: { tensor: "blk.0.attn_q.weight", index: 5, value: v } })
          .then(() => done(null))
          .catch((e) => done(e));
      }, value);
    const waitFor = (text, why) => browser.waitUntil(async () => (await modified()) === text, { timeout: 10000, timeoutMsg: `${why}: ${text} expected` });
    const key = async (...keys) => {
      await browser.execute(() => document.activeElement?.blur());
      await browser.keys(keys);
    };
    assert.equal(await setWeight("0.5"), null);
    await waitFor("● Modified", "after an edit");
    await key("Control", "z");
    await waitFor("Saved", "undo back to the file as opened");
    await key("Control", "Shift", "z");
    await waitFor("● Modified", "redo");
    await key("Control", "s");
    await waitFor("Saved", "after Save");
    assert.equal(await setWeight("-0.25"), null);
    await waitFor("● Modified", "an edit after Save");
    await key("Control", "z");
    await waitFor("Saved", "undo back to the saved state");
    await key("Control", "y");
    await waitFor("● Modified", "redo after Save");
    await key("Control", "z");
    await waitFor("Saved", "undo again");
  });
});
