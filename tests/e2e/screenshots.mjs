// Screenshots of every screen of the real app, for docs/screenshots/ (shown in the README).
// Run through `scripts/screenshots.sh` (builds the app, runs this under Xvfb at 1440×900).
// Each screen may set itself up first (open a second model, start the proxy...) through
// PREPARE below, so the picture shows the screen at work, not empty.
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fill, root, startApp } from "./harness.mjs";

const out = path.join(root, "docs/screenshots");
const demo = path.join(root, "demo/hotpatch-demo.gguf");
const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
const work = mkdtempSync(path.join(tmpdir(), "hotpatch-shots-"));

/** A perturbed copy of the demo model (a few tensors changed), for the diff screen. */
function perturbed() {
  const file = path.join(work, "perturbed.gguf");
  execFileSync(python, [path.join(root, "scripts/make_demo_model.py"), "--perturb", "blk.0.attn_q.weight,blk.1.ffn_up.weight", file]);
  return file;
}

async function setInput(browser, testid, value) {
  const el = await browser.$(`[data-testid="${testid}"]`);
  await el.waitForExist({ timeout: 5000 });
  await fill(browser, el, value);
}

async function click(browser, testid) {
  const el = await browser.$(`[data-testid="${testid}"]`);
  await el.waitForClickable({ timeout: 5000 });
  await el.click();
}

/** Per-screen set-up before its screenshot; a screen without one is shot as it opens. */
const PREPARE = {
  // Open a perturbed copy as B: the ranking runs and the top tensor's maps show.
  diff: async (browser) => {
    await setInput(browser, "diff-path", perturbed());
    await click(browser, "diff-open");
    await browser.$('[data-testid="diff-compare"]').waitForExist({ timeout: 30000, timeoutMsg: "the diff maps did not show" });
    await browser.pause(1500);
  },
  // Select a quantized weight and type a value: the edit panel previews what will be stored and
  // the other elements of its block that change (the side effects of re-quantizing).
  tensors: async (browser) => {
    const item = await browser.$('[data-testid="tensor-item"][data-name="blk.0.attn_q.weight"]');
    if (await item.isExisting()) await item.click();
    const cell = await browser.$('[data-testid="grid-cell"][data-row="3"][data-col="5"]');
    await cell.waitForExist({ timeout: 15000 });
    await cell.click();
    await setInput(browser, "edit-value", "0.75");
    await browser.$('[data-testid="edit-side-effects"]').waitForExist({ timeout: 10000, timeoutMsg: "no side effects previewed" });
    await browser.pause(800);
  },
  // An import preview of a configuration that appends a line to the chat template: the
  // preview shows the text diff (the end of the template and the added line).
  patches: async (browser) => {
    const tpl = await browser.executeAsync((done) => {
      window.__TAURI_INTERNALS__.invoke("metadata_text", { key: "tokenizer.chat_template" }).then(done, () => done(""));
    });
    const cfg = path.join(work, "append-to-template.hotpatch.json");
    const patched = `${tpl}\n{{- 'Always answer in French.' -}}`;
    writeFileSync(
      cfg,
      JSON.stringify({
        version: 2,
        name: "append to the chat template",
        metadata: [{ key: "tokenizer.chat_template", original: { type: "STRING", value: tpl }, patched: { type: "STRING", value: patched } }],
      }),
    );
    await setInput(browser, "import-path", cfg);
    await click(browser, "import-preview-run");
    await browser.$('[data-testid="preview-text-diff"]').waitForExist({ timeout: 15000, timeoutMsg: "no text diff in the preview" });
  },
  // A recipe of two operations: drop a layer, re-encode the attention queries; the preview shows.
  surgery: async (browser) => {
    await click(browser, "surgery-kind-layers");
    await setInput(browser, "surgery-layer-list", "2");
    await click(browser, "surgery-add");
    await click(browser, "surgery-kind-convert");
    await setInput(browser, "surgery-types", "blk.*.attn_q.weight=Q8_0");
    await click(browser, "surgery-add");
    await browser.$('[data-testid="surgery-metadata"]').waitForExist({ timeout: 15000, timeoutMsg: "no surgery preview" });
    await browser.pause(500);
  },
};

const SCREENS = ["model", "tensors", "diff", "bytes", "server", "patches", "surgery"];

/** The Run screen needs a real chat model: a copy of SmolLM2-135M-Instruct, one weight of its
 * final norm edited on the Tensors screen (staged), then the prompt run on both sides. */
async function runShot() {
  const smol = path.join(work, "SmolLM2-135M-Instruct.Q4_1.gguf");
  copyFileSync(path.join(root, "demo/SmolLM2-135M-Instruct.Q4_1.gguf"), smol);
  const { browser, stop } = await startApp([smol]);
  try {
    await browser.setWindowSize(1440, 900);
    await browser.waitUntil(async () => (await browser.$$('[data-testid="tensor-item"]')).length > 0, { timeout: 30000, timeoutMsg: "SmolLM2 did not open" });
    await click(browser, "nav-tensors");
    await browser.$('[data-testid="tensor-item"][data-name="output_norm.weight"]').click();
    const cell = await browser.$('[data-testid="grid-cell"][data-row="0"][data-col="0"]');
    await cell.waitForExist({ timeout: 15000 });
    await cell.click();
    await setInput(browser, "edit-value", "3000");
    await click(browser, "edit-apply");
    await browser.$('[data-testid="edit-result"]').waitForExist({ timeout: 5000 });
    await click(browser, "nav-run");
    await click(browser, "run-go");
    await browser.$('[data-testid="run-verdict"]').waitForExist({ timeout: 120000, timeoutMsg: "the run did not finish" });
    await browser.pause(600);
    const file = path.join(out, "run.png");
    await browser.saveScreenshot(file);
    console.log(`screenshots: ${path.relative(root, file)}`);
  } finally {
    await stop();
  }
}

async function main() {
  mkdirSync(out, { recursive: true });
  const model = path.join(work, "hotpatch-demo.gguf");
  copyFileSync(demo, model); // never touch the demo itself
  const { browser, stop } = await startApp([model]);
  try {
    await browser.setWindowSize(1440, 900);
    await browser.$('[data-testid="model-title"]').waitForExist({ timeout: 20000 });
    await browser.waitUntil(async () => /llama/.test(await browser.$('[data-testid="model-title"]').getText()), {
      timeout: 20000,
      timeoutMsg: "the demo model did not open",
    });
    // The theme choice persists in the webview's storage: start from light.
    for (let i = 0; i < 3 && !(await browser.$('[data-testid="theme-toggle"]').getText()).includes("Light"); i++) {
      await click(browser, "theme-toggle");
    }
    for (const name of SCREENS) {
      await click(browser, `nav-${name}`);
      await browser.$(`[data-testid="screen-${name}"]`).waitForExist({ timeout: 5000 });
      if (PREPARE[name]) await PREPARE[name](browser);
      await browser.pause(600);
      const file = path.join(out, `${name}.png`);
      await browser.saveScreenshot(file);
      console.log(`screenshots: ${path.relative(root, file)}`);
    }
    // One dark-theme picture, to show the theme works.
    await click(browser, "nav-tensors");
    await click(browser, "theme-toggle"); // light -> dark
    await browser.pause(400);
    await browser.saveScreenshot(path.join(out, "tensors-dark.png"));
    console.log("screenshots: docs/screenshots/tensors-dark.png");
    await click(browser, "theme-toggle"); // dark -> system, as a user starts
  } finally {
    await stop();
  }
  await runShot();
}

main().catch((e) => {
  console.error(`screenshots: ${e.stack ?? e}`);
  process.exit(1);
});
