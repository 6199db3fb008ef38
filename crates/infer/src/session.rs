//! The engine bound to an edit session: the model as edited and the model as opened, side by
//! side, kept in step with every change of the session's [`hotpatch_core::Engine`] with no
//! reload.
//!
//! - **Edited** instance. Live mode: nothing to do — the session writes through a shared map
//!   into the page cache, and llama.cpp's shared read-only mapping of the same file is the page
//!   cache. Staged mode: the session's edits live in its private copy-on-write map, invisible
//!   to llama.cpp; before each computation the pages holding changed bytes are replaced by
//!   private pages of the same file in llama.cpp's mapping and the session's bytes written
//!   there ([`crate::overlay`]); the file on disk is untouched.
//! - **Original** instance (loaded on first use): the same file, where every page an edit
//!   touched is replaced by a private page holding the bytes as opened
//!   ([`hotpatch_core::Engine::original_bytes`]) — in live mode that is what keeps the original
//!   original while the file changes under it.
//!
//! Cost: one private 4 KiB page per page an edit touched, per instance (edited: staged mode
//! only), plus one `mmap` call per run of new pages and a copy of the touched bytes each time
//! the session's revision moved. Nothing is proportional to the model's size.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hotpatch_core::{Engine, Mode, RegionId};

use crate::error::{InferError, Result};
use crate::instance::{
    generate_with, GenOptions, Generation, Generator, Instance, InstanceOptions, Step,
};
use crate::llama::Token;
use crate::sample::{self, Candidate};

/// Which side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// The model with the session's edits.
    Edited,
    /// The model as opened.
    Original,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Whether anything had changed since the last sync.
    pub changed: bool,
    /// Bytes copied into private pages.
    pub bytes: u64,
    /// Private memory held by the instance after the sync.
    pub private_bytes: u64,
}

struct Shard {
    region: RegionId,
    path: PathBuf,
}

struct SideState {
    inst: Instance,
    /// Session revision (`Engine::last_event_id`) it was synced to.
    synced: Option<u64>,
    /// Pages (per shard) holding bytes as opened (original side only).
    baseline: Vec<BTreeSet<u64>>,
}

/// The edited and the original model of an edit session.
pub struct SessionEngine {
    core: Engine,
    shards: Vec<Shard>,
    mode: Mode,
    options: InstanceOptions,
    edited: SideState,
    original: Option<SideState>,
}

impl std::fmt::Debug for SessionEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEngine")
            .field(
                "shards",
                &self.shards.iter().map(|s| &s.path).collect::<Vec<_>>(),
            )
            .field("mode", &self.mode)
            .finish()
    }
}

impl SessionEngine {
    /// Loads the session's model (`shards`: each file with its region, in shard order, as
    /// `Manager::shards` lists them). Every region must map a whole file, staged or live.
    pub fn attach(
        core: &Engine,
        shards: &[(PathBuf, RegionId)],
        options: InstanceOptions,
        progress: &mut dyn FnMut(f32) -> bool,
    ) -> Result<SessionEngine> {
        let first = shards.first().ok_or_else(|| InferError::Invalid {
            what: "session",
            message: "no model attached".into(),
        })?;
        let info = core.region_info(first.1)?;
        if info.mode == Mode::ReadOnly {
            return Err(InferError::Invalid {
                what: "session",
                message: "the model is attached read-only".into(),
            });
        }
        let inst = Instance::load(&first.0, options, progress)?;
        if inst.shards().len() != shards.len() {
            return Err(InferError::Invalid {
                what: "session",
                message: format!(
                    "the session has {} files, llama.cpp loaded {}",
                    shards.len(),
                    inst.shards().len()
                ),
            });
        }
        for s in 0..shards.len() {
            inst.editable(s).map_err(InferError::NotMapped)?;
        }
        let mut e = SessionEngine {
            core: core.clone(),
            shards: shards
                .iter()
                .map(|(p, r)| Shard {
                    region: *r,
                    path: p.clone(),
                })
                .collect(),
            mode: info.mode,
            options,
            edited: SideState {
                baseline: vec![BTreeSet::new(); shards.len()],
                inst,
                synced: None,
            },
            original: None,
        };
        e.sync(Side::Edited)?;
        Ok(e)
    }

    /// Whether this engine serves exactly these session files and regions (else the session
    /// re-attached, e.g. after a Save that rewrote the header: load again).
    pub fn serves(&self, shards: &[(PathBuf, RegionId)]) -> bool {
        self.shards.len() == shards.len()
            && self
                .shards
                .iter()
                .zip(shards)
                .all(|(a, (p, r))| a.path == *p && a.region == *r)
            && shards
                .first()
                .and_then(|(_, r)| self.core.region_info(*r).ok())
                .is_some_and(|i| i.mode == self.mode)
    }

    /// The session revision (`Engine::last_event_id`): what a sync brings the sides up to.
    pub fn revision(&self) -> u64 {
        self.core.last_event_id()
    }

    /// The session's mapping mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The model's first file.
    pub fn path(&self) -> &Path {
        &self.shards[0].path
    }

    /// Whether the original instance is loaded.
    pub fn has_original(&self) -> bool {
        self.original.is_some()
    }

    fn side_state(&mut self, side: Side) -> Result<&mut SideState> {
        if side == Side::Original && self.original.is_none() {
            let inst = Instance::load(&self.shards[0].path, self.options, &mut |_| true)?;
            for s in 0..self.shards.len() {
                inst.editable(s).map_err(InferError::NotMapped)?;
            }
            self.original = Some(SideState {
                baseline: vec![BTreeSet::new(); self.shards.len()],
                inst,
                synced: None,
            });
        }
        Ok(match side {
            Side::Edited => &mut self.edited,
            Side::Original => self.original.as_mut().ok_or_else(|| InferError::Invalid {
                what: "side",
                message: "no original instance".into(),
            })?,
        })
    }

    /// Brings one side up to date with the session (O(1) when nothing changed).
    pub fn sync(&mut self, side: Side) -> Result<SyncReport> {
        let core = self.core.clone();
        let mode = self.mode;
        let regions: Vec<RegionId> = self.shards.iter().map(|s| s.region).collect();
        let st = self.side_state(side)?;
        sync_parts(
            &core,
            &regions,
            mode,
            side,
            &mut st.inst,
            &mut st.synced,
            &mut st.baseline,
        )
    }

    /// One side, synced.
    pub fn instance(&mut self, side: Side) -> Result<&mut Instance> {
        self.sync(side)?;
        Ok(&mut self.side_state(side)?.inst)
    }

    /// Generates on one side, syncing edits before every token (an edit made meanwhile shows
    /// from the next token on).
    pub fn generate(
        &mut self,
        side: Side,
        prompt: &[Token],
        options: &GenOptions,
        on_step: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Generation> {
        let core = self.core.clone();
        let mode = self.mode;
        let regions: Vec<RegionId> = self.shards.iter().map(|s| s.region).collect();
        let SideState {
            inst,
            synced,
            baseline,
        } = self.side_state(side)?;
        let mut before = |inst: &mut Instance| {
            sync_parts(&core, &regions, mode, side, inst, synced, baseline).map(|_| ())
        };
        generate_with(inst, prompt, options, &mut before, on_step)
    }

    /// The `k` most probable next tokens of one side.
    pub fn next_token(&mut self, side: Side, prompt: &[Token], k: usize) -> Result<Vec<Candidate>> {
        self.instance(side)?.next_token(prompt, k)
    }

    /// Next-token logits of one side.
    pub fn next_logits(&mut self, side: Side, prompt: &[Token]) -> Result<Vec<f32>> {
        self.instance(side)?.next_logits(prompt)
    }

    /// Both sides, synced, for an evaluation of edited (A) against original (B).
    pub fn both(&mut self) -> Result<(&mut Instance, &mut Instance)> {
        self.sync(Side::Edited)?;
        self.sync(Side::Original)?;
        let o = self.original.as_mut().ok_or_else(|| InferError::Invalid {
            what: "side",
            message: "no original instance".into(),
        })?;
        Ok((&mut self.edited.inst, &mut o.inst))
    }

    /// The engine for this session in `slot`, loading it when the slot is empty or serves
    /// other files or regions (the session re-attached), reusing it otherwise.
    pub fn ensure<'a>(
        slot: &'a mut Option<SessionEngine>,
        core: &Engine,
        shards: &[(PathBuf, RegionId)],
        options: InstanceOptions,
        progress: &mut dyn FnMut(f32) -> bool,
    ) -> Result<&'a mut SessionEngine> {
        if !slot.as_ref().is_some_and(|e| e.serves(shards)) {
            *slot = None;
            *slot = Some(SessionEngine::attach(core, shards, options, progress)?);
        }
        slot.as_mut().ok_or_else(|| InferError::Invalid {
            what: "session",
            message: "no engine".into(),
        })
    }

    /// The prompt's tokens: `text` as is, or (with `chat`) as one user message formatted with
    /// the model's own chat template.
    pub fn prompt_tokens(&mut self, text: &str, chat: bool) -> Result<Vec<Token>> {
        let inst = self.instance(Side::Edited)?;
        let text = if chat {
            inst.chat_prompt(&[("user".to_string(), text.to_string())])?
        } else {
            text.to_string()
        };
        inst.tokenize_prompt(&text)
    }

    /// Generates on the edited side and (with `original`) on the original side, alternating
    /// token by token, each side synced with the session before each of its tokens;
    /// `on_step(side, step)` sees every token and may return `false` to stop both.
    pub fn generate_pair(
        &mut self,
        prompt: &[Token],
        options: &GenOptions,
        original: bool,
        on_step: &mut dyn FnMut(Side, &Step) -> bool,
    ) -> Result<(Generation, Option<Generation>)> {
        if original {
            self.side_state(Side::Original)?;
        }
        let core = self.core.clone();
        let mode = self.mode;
        let regions: Vec<RegionId> = self.shards.iter().map(|s| s.region).collect();
        let ed = &mut self.edited;
        let mut before_e = syncer(
            &core,
            &regions,
            mode,
            Side::Edited,
            &mut ed.synced,
            &mut ed.baseline,
        );
        let mut ge = Generator::begin(&mut ed.inst, prompt, options, &mut before_e)?;
        let mut orig = match (original, self.original.as_mut()) {
            (true, Some(o)) => Some(o),
            _ => None,
        };
        let mut go = match orig.as_deref_mut() {
            Some(o) => {
                let mut before_o = syncer(
                    &core,
                    &regions,
                    mode,
                    Side::Original,
                    &mut o.synced,
                    &mut o.baseline,
                );
                Some(Generator::begin(
                    &mut o.inst,
                    prompt,
                    options,
                    &mut before_o,
                )?)
            }
            None => None,
        };
        loop {
            let mut progressed = false;
            if let Some(step) = ge.step(&mut ed.inst, &mut before_e)? {
                progressed = true;
                if !on_step(Side::Edited, &step) {
                    ge.cancel();
                    if let Some(g) = go.as_mut() {
                        g.cancel();
                    }
                }
            }
            if let (Some(g), Some(o)) = (go.as_mut(), orig.as_deref_mut()) {
                let mut before_o = syncer(
                    &core,
                    &regions,
                    mode,
                    Side::Original,
                    &mut o.synced,
                    &mut o.baseline,
                );
                if let Some(step) = g.step(&mut o.inst, &mut before_o)? {
                    progressed = true;
                    if !on_step(Side::Original, &step) {
                        g.cancel();
                        ge.cancel();
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        Ok((ge.finish(), go.map(Generator::finish)))
    }

    /// The next-token distributions of both sides after `prompt`, compared.
    pub fn compare_next(&mut self, prompt: &[Token], k: usize) -> Result<NextComparison> {
        let le = self.next_logits(Side::Edited, prompt)?;
        let lo = self.next_logits(Side::Original, prompt)?;
        let inst = &self.edited.inst;
        let mut edited = sample::top_k(&le, k);
        let mut original = sample::top_k(&lo, k);
        for c in edited.iter_mut().chain(original.iter_mut()) {
            c.text = inst.token_text(c.token);
        }
        let lse_e = sample::log_sum_exp(&le);
        let lse_o = sample::log_sum_exp(&lo);
        let p = |l: &[f32], lse: f64, t: Token| ((l[t as usize] as f64) - lse).exp() as f32;
        let mut ids: Vec<Token> = edited.iter().chain(&original).map(|c| c.token).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rows: Vec<TokenShift> = ids
            .into_iter()
            .map(|t| TokenShift {
                token: t,
                text: inst.token_text(t),
                p_edited: p(&le, lse_e, t),
                p_original: p(&lo, lse_o, t),
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.p_edited - b.p_original)
                .abs()
                .partial_cmp(&(a.p_edited - a.p_original).abs())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut kld = 0.0f64;
        for (&x, &y) in le.iter().zip(&lo) {
            let a = x as f64 - lse_e;
            let b = y as f64 - lse_o;
            let pa = a.exp();
            if pa > 0.0 {
                kld += pa * (a - b);
            }
        }
        let max_abs_logit_change = le
            .iter()
            .zip(&lo)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        Ok(NextComparison {
            top1_changed: edited.first().map(|c| c.token) != original.first().map(|c| c.token),
            edited,
            original,
            shifts: rows,
            kld: kld.max(0.0),
            max_abs_logit_change,
        })
    }

    /// What the engine is serving.
    pub fn status(&self) -> EngineStatus {
        EngineStatus {
            path: self.shards[0].path.clone(),
            mode: self.mode,
            original_loaded: self.original.is_some(),
            private_bytes: self.private_bytes(),
            n_ctx: self.edited.inst.n_ctx(),
            threads: self.edited.inst.threads(),
            load_seconds: self.edited.inst.load_seconds(),
            chat_template: self.edited.inst.model().chat_template().is_some(),
        }
    }

    /// Private memory held by both instances (bytes).
    pub fn private_bytes(&self) -> u64 {
        self.edited.inst.private_bytes()
            + self.original.as_ref().map_or(0, |o| o.inst.private_bytes())
    }
}

/// One token whose probability the edit moved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenShift {
    /// Token id.
    pub token: Token,
    /// Its text.
    pub text: String,
    /// Probability on the edited side.
    pub p_edited: f32,
    /// Probability on the original side.
    pub p_original: f32,
}

/// The next-token distributions of the edited and the original model, compared.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NextComparison {
    /// Edited side's top-k.
    pub edited: Vec<Candidate>,
    /// Original side's top-k.
    pub original: Vec<Candidate>,
    /// Every token of either top-k with both probabilities, largest change first.
    pub shifts: Vec<TokenShift>,
    /// Whether the most likely token differs.
    pub top1_changed: bool,
    /// KL(edited ‖ original) of the whole distribution (nats).
    pub kld: f64,
    /// Largest |Δ logit| over the vocabulary.
    pub max_abs_logit_change: f32,
}

/// What a [`SessionEngine`] serves.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStatus {
    /// The model's first file.
    pub path: PathBuf,
    /// Staged or live.
    pub mode: Mode,
    /// Whether the original side is loaded.
    pub original_loaded: bool,
    /// Private memory for edits, both sides.
    pub private_bytes: u64,
    /// Context length.
    pub n_ctx: u32,
    /// Threads.
    pub threads: u32,
    /// Seconds the edited side took to load.
    pub load_seconds: f64,
    /// Whether the model has a chat template.
    pub chat_template: bool,
}

/// Brings `inst` (one side) up to date with the session's regions.
/// The hook that syncs one side's instance with the session before each of its tokens
/// ([`sync_parts`] with everything but the instance bound).
fn syncer<'a>(
    core: &'a Engine,
    regions: &'a [RegionId],
    mode: Mode,
    side: Side,
    synced: &'a mut Option<u64>,
    baseline: &'a mut [BTreeSet<u64>],
) -> impl FnMut(&mut Instance) -> Result<()> + 'a {
    move |inst| sync_parts(core, regions, mode, side, inst, synced, baseline).map(|_| ())
}

fn sync_parts(
    core: &Engine,
    regions: &[RegionId],
    mode: Mode,
    side: Side,
    inst: &mut Instance,
    synced: &mut Option<u64>,
    baseline: &mut [BTreeSet<u64>],
) -> Result<SyncReport> {
    let rev = core.last_event_id();
    if *synced == Some(rev) {
        return Ok(SyncReport {
            changed: false,
            bytes: 0,
            private_bytes: inst.private_bytes(),
        });
    }
    let mut bytes = 0u64;
    for (shard, &region) in regions.iter().enumerate() {
        if side == Side::Edited && mode == Mode::Live {
            continue; // the page cache is what llama.cpp maps
        }
        let file = inst.file(shard)?;
        let page = file.page();
        let region_len = core.region_info(region)?.len;
        let mut pages: BTreeSet<u64> = BTreeSet::new();
        for (s, e) in core.touched_ranges(region) {
            if let Some((cs, cl)) = file.clip(s, e - s) {
                pages.extend(cs / page..(cs + cl).div_ceil(page));
            }
        }
        if side == Side::Edited {
            // Also every page copied before: an undo followed by a new edit drops the undone
            // range from the history, but the copy still holds the edit.
            pages.extend(file.overlaid_pages());
        }
        for (off, len) in runs(&pages, page, region_len) {
            let Some((off, len)) = inst.file(shard)?.clip(off, len) else {
                continue;
            };
            let want = match side {
                Side::Edited => core.read(region, off, len)?,
                Side::Original => {
                    let first = off / page;
                    let last = (off + len).div_ceil(page);
                    if (first..last).all(|p| baseline[shard].contains(&p)) {
                        continue; // already holds the bytes as opened, which never change
                    }
                    core.original_bytes(region, off, len)?
                }
            };
            if inst.read(shard, off, len)? != want {
                inst.write(shard, off, &want)?;
                bytes += len;
                if side == Side::Original {
                    baseline[shard].extend(off / page..(off + len).div_ceil(page));
                }
            }
        }
    }
    *synced = Some(rev);
    Ok(SyncReport {
        changed: true,
        bytes,
        private_bytes: inst.private_bytes(),
    })
}

/// Contiguous runs of pages as (offset, len), clipped to `limit` bytes.
fn runs(pages: &BTreeSet<u64>, page: u64, limit: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &p in pages {
        let s = p * page;
        if s >= limit {
            break;
        }
        let e = ((p + 1) * page).min(limit);
        match out.last_mut() {
            Some((os, ol)) if *os + *ol == s => *ol = e - *os,
            _ => out.push((s, e - s)),
        }
    }
    out
}
