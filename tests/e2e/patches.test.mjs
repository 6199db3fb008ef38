// Job 3, driven for real: make edits in the app (presets applied from the Patches screen, one
// of them undone from the patch-event log; a byte write from the Bytes screen; a chat template
// change on the Model screen), save (the metadata edit rewrites the file), then export a
// configuration through the path field — after the save, so the recipe must survive it and name
// the original model; open a fresh copy of the demo, import the configuration with a preview
// (which must list the changes, the chat template as current → new), apply (the template shows
// pending on the Model screen), save — the two saved files must be byte-identical. gguf-py
// (llama.cpp's reader) says where each tensor's data lies, so the test also checks that the
// tensors changed are exactly the ones the surviving edits target.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const demo = path.join(root, "demo/hotpatch-demo.gguf");
const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
const sha256 = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");
const dumpScript = path.join(root, "tests/oracle/gguf_dump.py");
const TEMPLATE = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>";

/** gguf-py's view of a file: metadata values and a SHA-256 per tensor's data. */
function dump(file) {
  return JSON.parse(execFileSync(python, [dumpScript, file], { encoding: "utf8", maxBuffer: 64 << 20 }));
}

/** gguf-py: absolute data offset and size of every tensor. */
function tensorSpans(file) {
  const script = `
import sys, json
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
print(json.dumps({t.name: [int(t.data_offset), int(t.n_bytes)] for t in r.tensors}))`;
  return JSON.parse(execFileSync(python, ["-c", script, file], { encoding: "utf8" }));
}

/** numpy over gguf-py's dequantized tensors: what a safety scan with |x| > threshold must count. */
function scanOracle(file, threshold) {
  const script = `
import sys, json
import numpy as np
from gguf import GGUFReader, dequantize
r = GGUFReader(sys.argv[1]); th = float(sys.argv[2])
total = 0
for t in r.tensors:
    x = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).ravel()
    fin = np.isfinite(x)
    sub = fin & (x != 0) & (np.abs(x) < np.finfo(np.float32).tiny)
    total += int(np.isnan(x).sum() + np.isinf(x).sum() + sub.sum() + (fin & ~sub & (np.abs(x) > th)).sum())
print(total)`;
  return Number(execFileSync(python, ["-c", script, file, String(threshold)], { encoding: "utf8" }).trim());
}

async function click(browser, testId) {
  const el = await browser.$(`[data-testid="${testId}"]`);
  await el.waitForClickable({ timeout: 15000 });
  await el.click();
}

async function setField(browser, testId, value) {
  const el = await browser.$(`[data-testid="${testId}"]`);
  await el.waitForEnabled({ timeout: 10000 });
  // Not setValue: its clear does not reach React, so a prefilled field kept its text in front.
  await fill(browser, el, value);
}

/** The path of the model the window has open (the top bar's title attribute). */
async function openPath(browser) {
  return browser.execute(() => document.querySelector('[data-testid="model-title"] .model-path')?.getAttribute("title") ?? null);
}

async function openModel(browser, file) {
  await setField(browser, "open-path", file);
  await click(browser, "open-button");
  await browser.waitUntil(async () => (await openPath(browser)) === file, { timeout: 20000, timeoutMsg: `${file} did not open` });
}

/** Saves the open model in place with the studio's Save button (Model screen) and waits for the file to change. */
async function saveModel(browser, file) {
  const before = sha256(file);
  await click(browser, "nav-model");
  await click(browser, "save-button");
  await browser.waitUntil(() => sha256(file) !== before, { timeout: 30000, interval: 300, timeoutMsg: `${file} was not saved` });
  // The button is enabled again once the save job finished.
  await browser.$('[data-testid="save-button"]').waitForEnabled({ timeout: 30000 });
  await click(browser, "nav-patches");
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

/** A metadata row's status on the Model screen (unchanged / changed / added / removed). */
async function metaStatus(browser, key) {
  return browser.execute((k) => document.querySelector(`[data-testid="meta-row"][data-key="${k}"]`)?.getAttribute("data-status") ?? null, key);
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

describe("Patches screen: edit, export, import with preview into a fresh copy, identical bytes", () => {
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
    await browser.waitUntil(async () => (await openPath(browser)) === edited, { timeout: 20000, timeoutMsg: "the edited copy did not open" });
    await click(browser, "nav-patches");
    await browser.$('[data-testid="screen-patches"]').waitForDisplayed({ timeout: 10000 });
  });

  after(async () => {
    await app?.stop();
  });

  it("scans every tensor with progress and counts what numpy counts", async () => {
    await setField(browser, "safety-threshold", "0.25");
    assert.equal(await browser.$('[data-testid="safety-repair"]').isSelected(), false, "scan only, no repair");
    await click(browser, "safety-run");
    const report = await browser.$('[data-testid="safety-report"]');
    await browser.waitUntil(async () => (await report.isExisting()) && /^Scanned/.test(await report.getText()), {
      timeout: 60000,
      timeoutMsg: "the full scan's report never appeared",
    });
    assert.equal(Number(await report.getAttribute("data-total")), scanOracle(demo, 0.25), "values flagged = numpy's count");
    // The status bar keeps the finished job's last line and how many progress messages it got.
    const status = () =>
      browser.execute(() => {
        const m = document.querySelector('[data-testid="status-message"]');
        return { text: m?.textContent ?? "", count: Number(m?.getAttribute("data-progress-count")) };
      });
    await browser.waitUntil(async () => /safety scan: \d+ values found in \d+ tensors/.test((await status()).text), {
      timeout: 10000,
      timeoutMsg: "the status bar never showed the scan's outcome",
    });
    assert.ok((await status()).count > 1, "progress streamed while scanning");
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

  it("writes four bytes into output_norm.weight from the Bytes screen (a recorded byte edit)", async () => {
    await click(browser, "nav-bytes");
    const [off] = spans["output_norm.weight"];
    await setField(browser, "op-offset", "0x" + (off + 8).toString(16).padStart(8, "0"));
    await setField(browser, "op-length", "4");
    await (await browser.$('[data-testid="op-select"]')).selectByAttribute("value", "write");
    await setField(browser, "op-hex", "00 00 40 40");
    await click(browser, "op-apply");
    await browser.waitUntil(async () => (await browser.$$('[data-testid="op-result"]')).length > 0, {
      timeout: 10000,
      timeoutMsg: "the byte write did not report",
    });
    await click(browser, "nav-patches");
  });

  it("changes the chat template on the Model screen (a pending metadata edit)", async () => {
    await click(browser, "nav-model");
    const area = await browser.$('[data-testid="chat-template-input"]');
    await area.waitForDisplayed({ timeout: 10000 });
    await area.scrollIntoView();
    await fill(browser, area, TEMPLATE);
    assert.equal(await area.getValue(), TEMPLATE);
    await click(browser, "chat-template-stage");
    await browser.waitUntil(async () => (await metaStatus(browser, "tokenizer.chat_template")) === "changed", {
      timeout: 5000,
      timeoutMsg: "the chat template edit was not staged",
    });
    await click(browser, "nav-patches");
    // The log lists the pending metadata edit, and names the file of each event.
    await browser.waitUntil(
      async () =>
        (await browser.execute(() => [...document.querySelectorAll('[data-testid="meta-step"]')].map((li) => li.textContent ?? ""))).some((t) =>
          t.includes("tokenizer.chat_template"),
        ),
      { timeout: 5000, timeoutMsg: "the Patches log does not list the chat template edit" },
    );
    const files = await browser.execute(() => [...document.querySelectorAll('[data-testid="event-file"]')].map((e) => e.textContent));
    assert.ok(files.length > 0 && files.every((f) => f === "edited.gguf"), `every change names its file: ${JSON.stringify(files)}`);
  });

  it("saves the edited model: the header is rewritten, only the edited tensors changed", async () => {
    await saveModel(browser, edited);
    const a = dump(demo);
    const b = dump(edited);
    assert.equal(b.metadata["tokenizer.chat_template"].value, TEMPLATE, "gguf-py reads the new template");
    const changed = Object.keys(a.tensors).filter((t) => a.tensors[t].sha256 !== b.tensors[t].sha256);
    assert.deepEqual(changed.sort(), ["blk.1.ffn_down.weight", "output_norm.weight"], "the scale and the byte write");
    // The written float 3.0 moved with its tensor (the header grew): find it where gguf-py says.
    const w = tensorSpans(edited)["output_norm.weight"][0] + 8;
    assert.deepEqual([...readFileSync(edited).subarray(w, w + 4)], [0x00, 0x00, 0x40, 0x40], "the written float 3.0 is in the file");
  });

  it("exports, after the save, the changes still in effect through the path field", async () => {
    await setField(browser, "export-path", configPath);
    await click(browser, "export-run");
    const result = await browser.$('[data-testid="export-result"]');
    await result.waitForDisplayed({ timeout: 10000 });
    assert.match(await result.getText(), /1 tensor edit,/);
    assert.match(await result.getText(), /1 metadata edit,/);
    const config = JSON.parse(readFileSync(configPath, "utf8"));
    assert.deepEqual(
      config.tensor_patches,
      [{ tensor: "blk.1.ffn_down.weight", transform: { op: "scale", factor: 0.5 } }],
      "the undone preset is not exported; the other is, as the semantic edit",
    );
    assert.equal(config.model.file_name, "edited.gguf");
    // The recipe names the model it applies to: the fingerprint a fresh copy of the demo has
    // (SHA-256 of its header up to the tensor data, which gguf-py locates), not the rewritten file's.
    const dataStart = Math.min(...Object.values(spans).map(([off]) => off));
    const header = readFileSync(demo).subarray(0, dataStart);
    assert.equal(config.model.fingerprint, createHash("sha256").update(header).digest("hex"));
    const [off] = spans["output_norm.weight"];
    assert.deepEqual(
      config.byte_patches.map((b) => [b.offset, b.patched]),
      [[off + 8, "00004040"]],
      "the byte write is exported with its offset (in the original layout) and bytes",
    );
    assert.equal(config.byte_patches[0].original.length, 8, "with the 4 bytes it replaced, to check on import");
    assert.equal(config.version, 2);
    assert.deepEqual(config.metadata, [
      {
        key: "tokenizer.chat_template",
        original: { type: "STRING", value: dump(demo).metadata["tokenizer.chat_template"].value },
        patched: { type: "STRING", value: TEMPLATE },
      },
    ]);
    // A bad path is refused next to the field, with the OS's reason.
    await setField(browser, "export-path", path.join(dir, "missing-dir", "x.json"));
    await click(browser, "export-run");
    const err = await browser.$('[data-testid="export-error"]');
    await err.waitForDisplayed({ timeout: 5000 });
    assert.match(await err.getText(), /missing-dir/);
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
    assert.equal(items.length, 3, `one row per exported change: ${JSON.stringify(items)}`);
    assert.deepEqual(items[0], ["blk.1.ffn_down.weight", "willChange"], "the tensor edit");
    assert.equal(items[1][1], "willChange", "the byte patch finds its original bytes in the fresh copy");
    assert.deepEqual(items[2], ["tokenizer.chat_template", "willChange"], "the template finds the value it expects");
    // The template's row shows the value now and the new value (clipped to one line).
    const [from, to] = await browser.execute(() =>
      ["preview-from", "preview-to"].map((id) => document.querySelector(`[data-testid="preview-change"][data-target="tokenizer.chat_template"] [data-testid="${id}"]`)?.textContent ?? ""),
    );
    assert.match(from, /^STRING "\{% for m in messages %\}<\|.*…"$/, from);
    assert.ok(to.startsWith(`STRING "${TEMPLATE.slice(0, 40)}`), to);
    // ... and the whole change as a text diff: without its removed parts it reads as the new
    // template, and only the part that changed is marked added.
    const whole = await browser.$('[data-testid="preview-text-diff-whole"]');
    if (await whole.isExisting()) await whole.click();
    const [after, added] = await browser.execute(() => {
      const pre = document.querySelector('[data-testid="preview-text-diff"] pre');
      const parts = [...(pre?.childNodes ?? [])];
      return [
        parts.filter((n) => n.nodeName !== "DEL").map((n) => n.textContent).join(""),
        parts.filter((n) => n.nodeName === "INS").map((n) => n.textContent).join(""),
      ];
    });
    assert.equal(after, TEMPLATE, "the diff's new side is the template");
    assert.ok(added.length > 0 && added.length < TEMPLATE.length, `only the changed part is marked added: ${added}`);
    assert.match(await browser.$('[data-testid="import-verdict"]').getText(), /exact file layout/);
    assert.equal(sha256(fresh), sha256(demo), "a preview changes nothing");
    await browser.saveScreenshot(path.join(artifacts, "patches.png"));

    await click(browser, "import-apply");
    const result = await browser.$('[data-testid="apply-result"]');
    await result.waitForDisplayed({ timeout: 15000 });
    assert.match(await result.getText(), /1 metadata edit \(pending until Save\)/);
    // The Model screen shows the imported template pending, and the top bar unsaved work.
    await click(browser, "nav-model");
    await browser.waitUntil(async () => (await metaStatus(browser, "tokenizer.chat_template")) === "changed", {
      timeout: 5000,
      timeoutMsg: "the imported chat template is not pending on the Model screen",
    });
    assert.equal(await browser.$('[data-testid="modified-indicator"]').getText(), "● Modified");
    await click(browser, "nav-patches");
    await saveModel(browser, fresh);
    assert.equal(sha256(fresh), sha256(edited), "the imported and saved copy is byte-identical to the edited file");
    assert.ok(existsSync(configPath));
  });
});
