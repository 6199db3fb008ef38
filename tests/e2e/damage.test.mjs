// No silent damage in the real app: on the Tensors screen a value whose block cannot
// hold it (a Q4_1 block's re-computed f16 scale would overflow at 1e6) is refused next to the
// field with the largest value the block can hold, and Apply stays disabled; on the Patches
// screen a configuration recorded on another model is refused by its preview until the user
// says "Apply to this model anyway", and then applies. The file on disk is checked with the CLI
// and gguf-py.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const demo = path.join(root, "demo/hotpatch-demo.gguf");
const testid = (id) => `[data-testid="${id}"]`;

/** The `hotpatch` CLI of this workspace. */
function hotpatch(args) {
  return execFileSync("cargo", ["run", "-q", "-p", "hotpatch-cli", "--", ...args], { cwd: root, encoding: "utf8", env: process.env });
}

describe("No silent damage (real app)", () => {
  let app;
  let browser;
  let dir;
  let copy;
  let recipe;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "hotpatch-e2e-damage-"));
    copy = path.join(dir, "model.gguf");
    copyFileSync(demo, copy);
    // Another model with tensors of the same names: the demo under another architecture; a
    // recipe recorded on it.
    const other = path.join(dir, "other.gguf");
    const arch = path.join(dir, "arch.json");
    writeFileSync(
      arch,
      JSON.stringify({
        version: 2,
        metadata: [
          { key: "general.architecture", original: { type: "STRING", value: "llama" }, patched: { type: "STRING", value: "qwen2" } },
        ],
      }),
    );
    hotpatch(["apply", arch, demo, "--out", other]);
    recipe = path.join(dir, "recipe.json");
    hotpatch(["edit", other, "--set", "blk.0.attn_norm.weight[3]=0.5", "--record", recipe, "--out", path.join(dir, "x.gguf")]);
    app = await startApp([copy]);
    browser = app.browser;
    await browser.waitUntil(async () => (await browser.$$(testid("tensor-item"))).length > 0, {
      timeout: 20000,
      timeoutMsg: "the tensor list never appeared",
    });
  });

  after(async () => {
    await app?.stop();
  });

  it("refuses a value a Q4_1 block cannot hold, naming the largest it can", async () => {
    const nav = await browser.$(testid("nav-tensors"));
    if (await nav.isExisting()) await nav.click();
    const name = "blk.0.ffn_up.weight";
    await browser.$(`[data-testid="tensor-item"][data-name="${name}"]`).click();
    await browser.waitUntil(async () => (await browser.$(testid("detail-name")).getText()) === name, { timeout: 10000 });
    assert.equal(await browser.$(testid("detail-type")).getText(), "Q4_1");
    const cell = await browser.$('[data-testid="grid-cell"][data-row="0"][data-col="5"]');
    // The value grid may sit below the fold of a 1440×900 window: bring it into view first.
    await cell.waitForExist({ timeout: 15000, timeoutMsg: "the value grid never showed element 5" });
    await cell.scrollIntoView({ block: "center" });
    await cell.waitForClickable({ timeout: 15000 });
    await cell.click();
    const input = await browser.$(testid("edit-value"));
    await fill(browser, input, "1e6");
    const err = await browser.$(testid("edit-error"));
    // The field checks the number as it is typed ("1e" is not one yet); then the backend answers.
    let text = "";
    await browser.waitUntil(
      async () => {
        text = (await err.isExisting()) ? await err.getText() : "";
        return /too large/.test(text);
      },
      { timeout: 10000, timeoutMsg: `no refusal shown (last: ${text})` },
    );
    assert.match(text, /too large for a Q4_1 block/, text);
    assert.match(text, /largest magnitude it can hold there is \d/, text);
    assert.equal(await browser.$(testid("edit-apply")).isEnabled(), false, "Apply stays disabled");
    await browser.pause(500);
    await browser.saveScreenshot(path.join(artifacts, "damage-edit-refused.png"));
    // The limit it names is accepted.
    const limit = text.match(/can hold there is ([0-9.e+]+)/)[1];
    await fill(browser, input, limit);
    await browser.$(testid("edit-preview")).waitForDisplayed({ timeout: 10000 });
    assert.equal(await browser.$(testid("edit-error")).isExisting(), false, "no error for the limit itself");
  });

  it("refuses a configuration of another model until the user overrides it", async () => {
    await browser.$(testid("nav-patches")).click();
    const field = await browser.$(testid("import-path"));
    await field.waitForEnabled({ timeout: 10000 });
    await fill(browser, field, recipe);
    await browser.$(testid("import-preview-run")).click();
    const preview = await browser.$(testid("import-preview"));
    await preview.waitForDisplayed({ timeout: 10000 });
    const rows = () =>
      browser.execute(() =>
        [...document.querySelectorAll('[data-testid="preview-row"]')].map((r) => [r.getAttribute("data-target"), r.getAttribute("data-status")]),
      );
    assert.deepEqual((await rows())[0], ["other.gguf", "mismatch"], "the model row refuses");
    assert.equal(await browser.$(testid("import-apply")).isEnabled(), false, "Apply is disabled");
    assert.match(await browser.$(testid("import-verdict")).getText(), /different model.*not applied unless you say so/);
    await browser.saveScreenshot(path.join(artifacts, "damage-other-model.png"));

    await browser.$(testid("import-allow-other-model")).click();
    await browser.waitUntil(async () => (await rows())[0]?.[1] === "info", { timeout: 10000, timeoutMsg: "the override never showed" });
    assert.match(await browser.$(testid("import-verdict")).getText(), /applied to this one anyway/);
    const apply = await browser.$(testid("import-apply"));
    await apply.waitForEnabled({ timeout: 5000 });
    await apply.click();
    const result = await browser.$(testid("apply-result"));
    await result.waitForDisplayed({ timeout: 15000 });
    assert.match(await result.getText(), /1 tensor transform/);
    assert.deepEqual(readFileSync(copy), readFileSync(demo), "staged: the file is unchanged until Save");
  });
});
