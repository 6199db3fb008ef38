// Job 3, driven for real: make edits in the app (presets applied from the Patches screen, one
// of them undone from the patch-event log), export a configuration through the path field,
// save; open a fresh copy of the demo, import the configuration with a preview (which must list
// the changes), apply, save — the two saved files must be byte-identical. gguf-py (llama.cpp's
// reader) says where each tensor's data lies, so the test also checks that the bytes changed
// are exactly inside the tensor the surviving edit targets.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, root, startApp } from "./harness.mjs";

const demo = path.join(root, "demo/hotpatch-demo.gguf");
const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
const sha256 = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** gguf-py: absolute data offset and size of every tensor. */
function tensorSpans(file) {
  const script = `
import sys, json
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
print(json.dumps({t.name: [int(t.data_offset), int(t.n_bytes)] for t in r.tensors}))`;
  return JSON.parse(execFileSync(python, ["-c", script, file], { encoding: "utf8" }));
}

async function click(browser, testId) {
  const el = await browser.$(`[data-testid="${testId}"]`);
  await el.waitForClickable({ timeout: 15000 });
  await el.click();
}

async function setField(browser, testId, value) {
  const el = await browser.$(`[data-testid="${testId}"]`);
  await el.waitForEnabled({ timeout: 10000 });
  await el.setValue(value);
}

async function openModel(browser, file) {
  await setField(browser, "open-path", file);
  await click(browser, "open-button");
  await browser.waitUntil(async () => (await browser.$('[data-testid="model-title"]').getText()).includes(path.basename(file)), {
    timeout: 20000,
    timeoutMsg: `${file} did not open`,
  });
}

/** Saves the open model in place (Ctrl+S, the studio's save shortcut) and waits for the file to change. */
async function saveModel(browser, file) {
  const before = sha256(file);
  await browser.keys(["Control", "s"]);
  await browser.waitUntil(() => sha256(file) !== before, { timeout: 30000, interval: 300, timeoutMsg: `${file} was not saved` });
  // The status bar names the finished job.
  await browser.waitUntil(async () => /sav/i.test(await browser.$('[data-testid="status-message"]').getText()), { timeout: 10000 });
}

/** Previews a preset in the Patches screen and applies it; returns the apply result element's change id. */
async function applyPreset(browser, name) {
  const li = await browser.$(`[data-testid="preset-${name}"]`);
  await li.waitForDisplayed({ timeout: 10000 });
  await (await li.$("button")).click();
  const preview = await browser.$('[data-testid="import-preview"]');
  await preview.waitForDisplayed({ timeout: 10000 });
  assert.equal(await preview.getAttribute("data-applicable"), "true", `preset ${name} fits the demo model`);
  await click(browser, "import-apply");
  const result = await browser.$('[data-testid="apply-result"]');
  await result.waitForDisplayed({ timeout: 15000 });
  return result.getAttribute("data-change");
}

async function eventRows(browser) {
  return browser.execute(() =>
    [...document.querySelectorAll('[data-testid="event-row"]')].map((r) => ({
      operation: r.getAttribute("data-operation"),
      change: r.getAttribute("data-change"),
      undo: r.querySelector('[data-testid="event-undo"]') !== null,
    })),
  );
}

describe("Patches screen: edit, export, import with preview into a fresh copy, identical bytes (job 3)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-e2e-patches-"));
  const edited = path.join(dir, "edited.gguf");
  const fresh = path.join(dir, "fresh.gguf");
  const configPath = path.join(dir, "changes.hotpatch.json");
  copyFileSync(demo, edited);
  copyFileSync(demo, fresh);
  const spans = tensorSpans(demo);
  let app;
  let browser;

  before(async () => {
    app = await startApp([edited]);
    browser = app.browser;
    await browser.waitUntil(async () => (await browser.$('[data-testid="model-title"]').getText()).includes("edited.gguf"), {
      timeout: 20000,
    });
    await click(browser, "nav-patches");
    await browser.$('[data-testid="screen-patches"]').waitForDisplayed({ timeout: 10000 });
  });

  after(async () => {
    await app?.stop();
  });

  it("applies two presets, each an undoable entry of the live event log, and undoes the second from the log", async () => {
    const first = await applyPreset(browser, "scale-ffn");
    const second = await applyPreset(browser, "ablate-head");
    assert.ok(first && second && Number(second) > Number(first), `two undo entries (${first}, ${second})`);
    await browser.waitUntil(async () => (await eventRows(browser)).some((r) => r.change === second && r.undo), {
      timeout: 10000,
      timeoutMsg: "the second preset's event never became undoable in the log",
    });
    const rows = await eventRows(browser);
    assert.ok(rows.some((r) => r.change === first && r.undo), "the first preset's event is undoable too");
    // Undo the newest change from its row (one step: nothing was made after it).
    const undoButton = await browser.$(`[data-testid="event-row"][data-change="${second}"] [data-testid="event-undo"]`);
    assert.equal(await undoButton.getText(), "Undo");
    await undoButton.click();
    await browser.waitUntil(async () => (await eventRows(browser))[0]?.operation === "undo", {
      timeout: 10000,
      timeoutMsg: "the undo event did not arrive",
    });
    await browser.waitUntil(async () => !(await eventRows(browser)).some((r) => r.change === second && r.undo), {
      timeout: 5000,
      timeoutMsg: "the undone change still offers Undo",
    });
    assert.ok((await eventRows(browser)).some((r) => r.change === first && r.undo), "the first change stays undoable");
  });

  it("exports the changes still in effect through the path field", async () => {
    await setField(browser, "export-path", configPath);
    await click(browser, "export-run");
    const result = await browser.$('[data-testid="export-result"]');
    await result.waitForDisplayed({ timeout: 10000 });
    assert.match(await result.getText(), /1 tensor edit,/);
    const config = JSON.parse(readFileSync(configPath, "utf8"));
    assert.deepEqual(
      config.tensor_patches,
      [{ tensor: "blk.1.ffn_down.weight", transform: { op: "scale", factor: 0.5 } }],
      "the undone preset is not exported; the other is, as the semantic edit",
    );
    assert.equal(config.model.file_name, "edited.gguf");
    // A bad path is refused next to the field, with the OS's reason.
    await setField(browser, "export-path", path.join(dir, "missing-dir", "x.json"));
    await click(browser, "export-run");
    const err = await browser.$('[data-testid="export-error"]');
    await err.waitForDisplayed({ timeout: 5000 });
    assert.match(await err.getText(), /missing-dir/);
  });

  it("saves the edited model: only the edited tensor's bytes changed", async () => {
    await saveModel(browser, edited);
    const a = readFileSync(demo);
    const b = readFileSync(edited);
    assert.equal(a.length, b.length);
    const [off, len] = spans["blk.1.ffn_down.weight"];
    let changed = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) {
        changed++;
        assert.ok(i >= off && i < off + len, `byte ${i} changed outside blk.1.ffn_down.weight [${off}, ${off + len})`);
      }
    }
    assert.ok(changed > 0, "the scale changed bytes");
  });

  it("imports into a fresh copy: the preview lists the change, apply + save give identical bytes", async () => {
    await openModel(browser, fresh);
    await click(browser, "nav-patches");
    // A file that is not a configuration: refused next to the field, nothing previewed.
    await setField(browser, "import-path", demo);
    await click(browser, "import-preview-run");
    const err = await browser.$('[data-testid="import-error"]');
    await err.waitForDisplayed({ timeout: 5000 });
    assert.match(await err.getText(), /hotpatch-demo\.gguf/);

    await setField(browser, "import-path", configPath);
    await click(browser, "import-preview-run");
    const preview = await browser.$('[data-testid="import-preview"]');
    await preview.waitForDisplayed({ timeout: 10000 });
    const items = await browser.execute(() =>
      [...document.querySelectorAll('[data-testid="preview-row"]')].map((r) => [r.getAttribute("data-target"), r.getAttribute("data-status")]),
    );
    assert.deepEqual(items, [["blk.1.ffn_down.weight", "willChange"]], "the preview lists exactly the exported edit");
    assert.match(await browser.$('[data-testid="import-verdict"]').getText(), /exact file layout/);
    assert.equal(sha256(fresh), sha256(demo), "a preview changes nothing");
    await browser.saveScreenshot(path.join(artifacts, "patches.png"));

    await click(browser, "import-apply");
    await browser.$('[data-testid="apply-result"]').waitForDisplayed({ timeout: 15000 });
    await saveModel(browser, fresh);
    assert.equal(sha256(fresh), sha256(edited), "the imported and saved copy is byte-identical to the edited file");
    assert.ok(existsSync(configPath));
  });
});
