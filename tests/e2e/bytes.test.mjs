// The Bytes screen, driven for real on a copy of the demo model: the hex view labels the GGUF
// structure, a wildcard search finds exactly what the `hotpatch search` CLI and a Python scan
// find, a byte typed into the view changes the inspector's value, a header edit renames a
// label, and refusals (bad offset, a write that would break the header) show inline.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const demo = path.join(root, "demo/hotpatch-demo.gguf");
const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
const target = process.env.CARGO_TARGET_DIR ?? path.join(homedir(), ".cache/hotpatch-studio/target");
const cli = process.env.HOTPATCH_CLI ?? path.join(target, "debug/hotpatch");

/** gguf-py: metadata field offsets and tensor data offsets/types of `file`. */
function ggufPy(file) {
  const script = `
import sys, json
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
print(json.dumps({"fields": {k: int(f.offset) for k, f in r.fields.items()},
                  "tensors": [[t.name, t.tensor_type.name, int(t.data_offset)] for t in r.tensors]}))`;
  return JSON.parse(execFileSync(python, ["-c", script, file], { encoding: "utf8" }));
}

/** Overlapping matches of a Python regex over the file's bytes. */
function pyScan(file, regex) {
  const script = `
import sys, re, json
data = open(sys.argv[1], "rb").read()
print(json.dumps([m.start() for m in re.finditer(sys.argv[2].encode("latin-1"), data, re.DOTALL)]))`;
  return JSON.parse(execFileSync(python, ["-c", script, file, regex], { encoding: "utf8" }));
}

const hex8 = (n) => "0x" + n.toString(16).padStart(8, "0");

describe("Bytes screen (real app under Xvfb)", () => {
  let app;
  let browser;
  const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-bytes-e2e-"));
  const model = path.join(dir, "copy.gguf");
  copyFileSync(demo, model);
  const py = ggufPy(model);

  const $ = (id) => browser.$(`[data-testid="${id}"]`);
  const text = async (id) => (await $(id)).getText();
  const setField = async (id, value) => fill(browser, await $(id), value);
  const inspector = async (label) => browser.$(`[data-testid="insp-${label}"] td`).getText();

  before(async () => {
    app = await startApp([model]);
    browser = app.browser;
    await browser.setWindowSize(1440, 900);
    await browser.waitUntil(async () => (await browser.$$('[data-testid="tensor-item"]')).length > 0, {
      timeout: 20000,
      timeoutMsg: "the model never opened",
    });
    await (await $("nav-bytes")).click();
    await browser.waitUntil(async () => (await browser.$$(".hx-row[data-row]")).length > 10, {
      timeout: 10000,
      timeoutMsg: "the hex view never showed rows",
    });
  });

  after(async () => {
    await app?.stop();
  });

  it("labels the header and each metadata entry where gguf-py puts them", async () => {
    await browser.waitUntil(
      async () => (await browser.execute(() => document.querySelector('.hx-row[data-row="0"] .hx-cell')?.textContent)) === "47",
      { timeout: 10000, timeoutMsg: "the first row's bytes never arrived" },
    );
    const first = await browser.execute(() => document.querySelector('.hx-row[data-row="0"] .hx-label')?.textContent);
    assert.equal(first, "GGUF header");
    const magic = await browser.execute(() =>
      [...document.querySelectorAll('.hx-row[data-row="0"] .hx-ascii .hx-asc')].slice(0, 4).map((e) => e.textContent).join(""),
    );
    assert.equal(magic, "GGUF", "the ASCII column shows the magic");
    // Jump to general.architecture from the outline: the cursor lands on gguf-py's field offset.
    await setField("outline-filter", "general.architecture");
    await (await $("outline-item")).click();
    assert.equal(await text("inspector-offset"), hex8(py.fields["general.architecture"]));
    assert.match(await text("inspector-span"), /general\.architecture/);
  });

  it("finds a ?? wildcard pattern at the offsets the hotpatch CLI reports", async () => {
    const pattern = "67 ?? 6e 65 72 61 6c 2e";
    assert.ok(existsSync(cli), `the hotpatch CLI is built (${cli})`);
    const cliOut = JSON.parse(execFileSync(cli, ["search", model, pattern, "--json"], { encoding: "utf8" }));
    const want = cliOut.matches.map((m) => m.offset);
    assert.deepEqual(want, pyScan(model, "(?=g.neral\\.)"), "the CLI agrees with a Python scan");
    assert.ok(want.length > 3 && want.length < 200, `a handful of matches (${want.length})`);

    await setField("search-input", pattern);
    await (await $("search-run")).click();
    await browser.waitUntil(async () => (await text("search-count")).includes("match"), { timeout: 15000 });
    assert.equal(await text("search-count"), `${want.length} matches`);
    const listed = await browser.execute(() =>
      [...document.querySelectorAll('[data-testid="match"]')].map((e) => Number(e.getAttribute("data-offset"))),
    );
    assert.deepEqual(listed, want, "every match, in order, at the CLI's offsets");
    // Next jumps to the second match: the selection is the match (offset + pattern length).
    await (await $("search-next")).click();
    assert.equal(await text("search-current"), `2/${want.length}`);
    assert.equal(await text("selection"), `${hex8(want[1])} +8`);
  });

  it("finds a nibble wildcard (3?) exactly where a Python scan does, and text too", async () => {
    const want = pyScan(model, "(?=\\x00\\x00.[\\x30-\\x3f])");
    await setField("search-input", "00 00 ?? 3?");
    await (await $("search-run")).click();
    await browser.waitUntil(async () => (await text("search-count")) !== "" && !(await text("search-count")).startsWith("67"), {
      timeout: 15000,
    });
    await browser.waitUntil(async () => (await text("search-count")) === `${want.length.toLocaleString("en-US")} matches`, {
      timeout: 15000,
      timeoutMsg: `expected ${want.length} matches, saw ${await text("search-count")}`,
    });
    const listed = await browser.execute(() =>
      [...document.querySelectorAll('[data-testid="match"]')].map((e) => Number(e.getAttribute("data-offset"))),
    );
    assert.deepEqual(listed, want.slice(0, listed.length));

    await (await $("search-text")).click();
    await setField("search-input", "tokenizer.ggml.");
    await (await $("search-run")).click();
    const wantText = pyScan(model, "(?=tokenizer\\.ggml\\.)");
    await browser.waitUntil(async () => (await text("search-count")) === `${wantText.length} matches`, { timeout: 15000 });
    await (await $("search-hex")).click();
    await setField("search-input", "4f 3");
    await (await $("search-run")).click();
    await browser.waitUntil(async () => (await browser.$$('[data-testid="search-error"]')).length > 0, { timeout: 5000 });
    assert.match(await text("search-error"), /character 3/, "the backend names the position of the bad digit");
  });

  it("refuses a bad offset inline", async () => {
    await setField("goto-input", "abc");
    await (await $("goto-button")).click();
    assert.match(await text("goto-error"), /not a number.*0x prefix/);
    await setField("goto-input", "0xffffffffff");
    await (await $("goto-button")).click();
    assert.match(await text("goto-error"), /past the end/);
  });

  it("writes a typed byte into a tensor and the inspector shows the new value", async () => {
    const f32 = py.tensors.find((t) => t[1] === "F32");
    assert.ok(f32, "the demo has an F32 tensor");
    const [name, , offset] = f32;
    await setField("goto-input", hex8(offset + 4));
    await (await $("goto-button")).click();
    assert.equal(await text("inspector-offset"), hex8(offset + 4));
    assert.match(await text("inspector-span"), new RegExp(name.replace(/\./g, "\\.")));
    assert.match(await text("inspector-tensor"), /element\s*1\b/i, "byte 4 of an F32 tensor is element 1");

    // Type 00 00 80 3f into the view: the f32 at the cursor's start is then exactly 1.
    await (await $("hexview")).click();
    await setField("goto-input", hex8(offset + 4));
    await (await $("goto-button")).click();
    const cell = await browser.$(`.hx-cell[data-off="${offset + 4}"]`);
    await cell.click();
    for (const k of "0000803f") {
      await browser.keys([k]);
    }
    await browser.waitUntil(async () => (await browser.$(`.hx-cell[data-off="${offset + 7}"]`).getText()) === "3f", {
      timeout: 5000,
      timeoutMsg: "the typed bytes never showed",
    }).catch(async (e) => {
      await browser.saveScreenshot(path.join(artifacts, "bytes-typing.png"));
      const err = await browser.execute(() => document.querySelector('[data-testid="edit-error"]')?.textContent ?? "no edit error");
      const active = await browser.execute(() => document.activeElement?.className);
      throw new Error(`${e.message}; ${err}; focus on ${active}`);
    });
    await cell.click();
    await browser.waitUntil(async () => (await inspector("f32")) === "1", {
      timeout: 5000,
      timeoutMsg: `f32 at the cursor is ${await inspector("f32")}, want 1`,
    });
    assert.equal(await inspector("u32"), String(0x3f800000));
    await (await $("endian-be")).click();
    assert.equal(await inspector("u32"), String(0x0000803f), "big-endian reads the same bytes the other way");
    await (await $("endian-le")).click();
  });

  it("renames a metadata label after a valid header edit, and refuses one that breaks the header", async () => {
    // general.architecture's key starts 8 bytes (its length) after the field: write "G".
    const key = py.fields["general.architecture"] + 8;
    await setField("op-offset", hex8(key));
    await setField("op-length", "1");
    await (await $("op-select")).selectByAttribute("value", "write");
    await setField("op-hex", "47");
    await (await $("op-apply")).click();
    await browser.waitUntil(async () => (await browser.$$('[data-testid="op-result"]')).length > 0, { timeout: 5000 });
    assert.match(await text("op-result"), /write 1 bytes/);
    await setField("outline-filter", "General.arch");
    await browser.waitUntil(async () => (await browser.$$('[data-testid="outline-item"]')).length === 1, {
      timeout: 5000,
      timeoutMsg: "the outline never showed the renamed key",
    });
    const renamed = await browser.execute(() => document.querySelector('[data-testid="outline-item"] .outline-name')?.textContent);
    assert.equal(renamed, "General.architecture");

    await setField("op-offset", "0");
    await setField("op-hex", "00 00");
    await (await $("op-apply")).click();
    await browser.waitUntil(async () => (await browser.$$('[data-testid="op-error"]')).length > 0, { timeout: 5000 });
    assert.match(await text("op-error"), /would break the GGUF header/);
    const magic = await browser.execute(() =>
      [...document.querySelectorAll('.hx-row[data-row="0"] .hx-cell')].slice(0, 4).map((e) => e.textContent).join(" "),
    );
    assert.equal(magic, "47 47 55 46", "nothing was written: the magic is still GGUF");
    // Back to the top of a tensor's data for the picture.
    await setField("goto-input", hex8(py.tensors[1][2]));
    await (await $("goto-button")).click();
    assert.equal(await text("inspector-offset"), hex8(py.tensors[1][2]), "go-to still works after the refusal");
    await setField("outline-filter", `${py.tensors[0][0]} · ${py.tensors[0][1]}`);
    await browser.$(`[data-testid="outline-item"]`).click();
    await browser.saveScreenshot(path.join(artifacts, "bytes.png"));
  });
});
