//! The session's lifecycle: metadata edits staged beside the engine's journal, one undo
//! timeline (undo, redo, history), Save / Save As, and the mode switch — an `impl` block of
//! [`Manager`], which owns the state ([`crate::metadata::MetaJournal`] among it).
//!
//! # Overview
//! The engine edits bytes in place, but a metadata edit usually changes the size of the GGUF
//! header (a longer chat template, a new key), which moves every tensor. So metadata edits are
//! not byte patches: they are kept as a pending list of [`MetaEdit`]s beside the engine's
//! journal ([`MetaJournal`](crate::metadata::MetaJournal), owned by the [`Manager`]) and written by [`Manager::save`] /
//! [`Manager::save_as`] through the GGUF writer, which copies the tensor data of the model
//! image (so staged tensor edits are included) into a new file, atomically.
//!
//! - **Undo is one timeline.** Each metadata edit remembers the engine's newest undo entry at
//!   the time it was made. [`Manager::undo`] undoes the metadata edit when no engine change
//!   came after it, else the engine's last change; [`Manager::redo`] mirrors that. So a user
//!   who edits a weight, then the chat template, then another weight, undoes them in reverse.
//! - **Pending until saved.** [`Manager::metadata_view`] lists the header as it will be
//!   written, each entry marked unchanged / changed / added / removed.
//! - **Saving with pending metadata rewrites the file** (temp file + rename; for a split model,
//!   the first shard, which holds the metadata; `split.*` keys cannot be edited): the model is
//!   attached again afterwards, which clears the undo history (the recipe for export and the
//!   protections are kept, moved with the bytes they cover). Without pending metadata, Save
//!   is the engine's in-place save of changed ranges and the history survives.
//! - **Text forms** of values are in [`crate::metadata`].
//!
//! - **Configurations carry them.** Every edit is recorded (key, the value it replaced, the
//!   new value) and exported in order, net of undo, in the configuration's `metadata`
//!   section ([`crate::config::MetadataPatch`]); an import stages them as pending edits in one
//!   journal step *joined* to the engine group of the same import
//!   ([`MetaJournalEntry::joined`](crate::metadata::MetaJournalEntry::joined)), so one [`Manager::undo`] reverts the tensor, byte and
//!   metadata changes of an import together. A save that re-attaches keeps the recipe: the
//!   changes in effect stay recorded and the export keeps the identity of the model as first
//!   attached, the one a fresh copy of the original has.

use std::cell::Cell;
use std::io::Read;
use std::path::{Path, PathBuf};

use hotpatch_gguf::{
    apply_edits, write_file, GgufError, MetaEdit, MetaValue, TensorData, TensorSpec, WriteProgress,
};

use crate::config::{MetadataPatch, TypedValue};
use crate::event::{Operation, Origin, Target};
use crate::manager::{Manager, ManagerError};
use crate::metadata::{
    check_key, check_metadata_value, EntryStatus, MetaEntryView, MetaJournal, MetaJournalEntry,
};
use crate::{EngineError, HistoryEntry, Mode, Progress, ProgressFn};

/// One step of the session's undo history (engine change or metadata edit), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStep {
    /// `engine` or `metadata`.
    pub kind: StepKind,
    /// The id in its journal.
    pub id: u64,
    /// A one-line description ("tensor edit blk.0.attn_q.weight", "set tokenizer.chat_template").
    pub label: String,
    /// Bytes the step covers (0 for metadata edits).
    pub bytes: u64,
    /// Whether the step was undone (and can be redone).
    pub undone: bool,
}

/// Which journal a [`SessionStep`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// The engine's byte journal.
    Engine,
    /// The pending metadata edits.
    Metadata,
}

/// What [`Manager::undo`] / [`Manager::redo`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoOutcome {
    /// Which journal moved.
    pub kind: StepKind,
    /// The step's id.
    pub id: u64,
}

/// What a [`Manager::save`] or [`Manager::save_as`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveOutcome {
    /// The file written.
    pub path: PathBuf,
    /// Bytes written (changed ranges for an in-place save, the whole file for a rewrite).
    pub bytes_written: u64,
    /// Whether the whole file was rewritten (pending metadata edits, or Save As).
    pub rewritten: bool,
    /// Whether the model was attached again (the undo history was cleared).
    pub reattached: bool,
}

/// Where "Save As `dest`" writes a model of `n` files: `[dest]` for one file; for a split model
/// the shards `X-00001-of-0000N.gguf` … — `X` is `dest` without its `-NNNNN-of-MMMMM.gguf` part
/// when it names a shard of a model of `n` files, else `dest` without `.gguf`.
pub fn split_destinations(dest: &Path, n: usize) -> Vec<PathBuf> {
    if n <= 1 {
        return vec![dest.to_path_buf()];
    }
    let prefix = match hotpatch_gguf::split_name(dest) {
        Some((prefix, _, count)) if count == n as u64 => prefix,
        _ => {
            let s = dest.to_string_lossy();
            s.strip_suffix(".gguf").unwrap_or(&s).to_string()
        }
    };
    (1..=n)
        .map(|i| PathBuf::from(format!("{prefix}-{i:05}-of-{n:05}.gguf")))
        .collect()
}

/// A step of [`open_model`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenStage {
    /// Reading the header (`done` of `total` = the file's size).
    Parse,
    /// The tensors are indexed (`done` = `total` = the tensor count).
    Index,
    /// Opened (`done` = `total` = the file's size).
    Done,
}

/// Opens `path` read-only (every shard of a split model) as [`Manager::attach_model`] takes
/// it, telling `report` each step with a one-line message. An unreadable file is
/// [`ManagerError::Io`], a file that is not a valid model [`ManagerError::Model`].
pub fn open_model(
    path: &Path,
    report: &mut dyn FnMut(OpenStage, u64, u64, String),
) -> Result<hotpatch_gguf::GgufModel, ManagerError> {
    let size = std::fs::metadata(path)
        .map_err(|source| ManagerError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    report(
        OpenStage::Parse,
        0,
        size,
        format!("reading header of {}", path.display()),
    );
    let file = hotpatch_gguf::GgufModel::open(path)?;
    let n = file.tensors.len() as u64;
    report(
        OpenStage::Index,
        n,
        n,
        format!(
            "indexed {n} tensors and {} metadata entries",
            file.index().metadata.len()
        ),
    );
    report(
        OpenStage::Done,
        size,
        size,
        format!("opened {}", path.display()),
    );
    Ok(file)
}

/// Checks a Save As destination before anything is written: non-empty, a `.gguf` file name,
/// in an existing directory. The error is one sentence naming the path.
pub fn check_save_as_dest(path: &str) -> std::result::Result<PathBuf, String> {
    let t = path.trim();
    if t.is_empty() {
        return Err("no destination path given".into());
    }
    let p = PathBuf::from(t);
    if p.is_dir() {
        return Err(format!("{t} is a directory; give a file name"));
    }
    if p.extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case("gguf"))
    {
        return Err(format!("{t}: the file name should end in .gguf"));
    }
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = dir {
        if !d.is_dir() {
            return Err(format!("folder {} does not exist", d.display()));
        }
    }
    Ok(p)
}

/// Progress of a save over several files: file `i`'s own progress (in whatever unit its save
/// counts: changed bytes in place, file bytes for a rewrite) scaled to its size, so the whole
/// save reports `done` of `total` = the sizes of all files, rising monotonically.
struct Totals<'f> {
    sizes: Vec<u64>,
    before: Vec<u64>,
    total: u64,
    progress: ProgressFn<'f>,
}

impl<'f> Totals<'f> {
    fn new(sizes: &[u64], progress: ProgressFn<'f>) -> Self {
        let before = sizes
            .iter()
            .scan(0u64, |acc, &s| {
                let b = *acc;
                *acc += s;
                Some(b)
            })
            .collect();
        Totals {
            sizes: sizes.to_vec(),
            before,
            total: sizes.iter().sum(),
            progress,
        }
    }

    /// File `i` reports `p`: forward it as a share of all files.
    fn report(&mut self, i: usize, p: Progress) -> bool {
        let size = self.sizes[i];
        let done = if p.total == 0 {
            size
        } else {
            (u128::from(p.done.min(p.total)) * u128::from(size) / u128::from(p.total)) as u64
        };
        (self.progress)(Progress {
            done: self.before[i] + done,
            total: self.total,
        })
    }
}

/// A one-line label for an engine history entry.
pub fn describe_origin(o: &Origin) -> String {
    let op = match &o.operation {
        Operation::Other(s) | Operation::BitOp(s) => s.replace('_', " "),
        op => {
            let s = format!("{op:?}");
            // CamelCase → lower words.
            let mut w = String::new();
            for (i, c) in s.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    w.push(' ');
                }
                w.push(c.to_ascii_lowercase());
            }
            w
        }
    };
    let layer = format!("{:?}", o.layer).to_lowercase();
    let target = match &o.target {
        Target::Tensor { name, .. } => format!(" {name}"),
        Target::Range { offset, len, .. } => format!(" {len} B at {offset:#x}"),
        Target::Ranges { offset, count, .. } => format!(" {count} ranges from {offset:#x}"),
        Target::File(p) => format!(" {}", p.display()),
        _ => String::new(),
    };
    format!("{layer}: {op}{target}")
}

fn describe_edits(edits: &[MetaEdit]) -> String {
    match edits {
        [MetaEdit::Set(k, v)] => format!("metadata: set {k} ({})", v.value_type().name()),
        [MetaEdit::Remove(k)] => format!("metadata: remove {k}"),
        many => format!("metadata: {} edits from a configuration", many.len()),
    }
}

/// A [`Read`] over a slice that fails once `cancel` is set (how a write is cancelled).
struct CancelReader<'a> {
    data: &'a [u8],
    cancel: &'a Cell<bool>,
}

impl Read for CancelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.get() {
            return Err(std::io::Error::other("cancelled"));
        }
        self.data.read(buf)
    }
}

impl Manager {
    fn engine_top(&self) -> Option<u64> {
        self.engine().history().last().map(|h| h.id)
    }

    /// The staged metadata journal.
    pub fn metadata_journal(&self) -> &MetaJournal {
        &self.meta
    }

    /// Refuses a change of the `split.*` keys of a split model: they say how it is cut into
    /// files, and every file must keep agreeing on them.
    fn refuse_split_key(&self, key: &str, verb: &str) -> Result<(), ManagerError> {
        if key.starts_with("split.") && self.shards()?.len() > 1 {
            return Err(EngineError::InvalidArgument {
                what: "metadata key",
                why: format!(
                    "{key} describes how this split model is cut into files; it cannot be {verb}"
                ),
            }
            .into());
        }
        Ok(())
    }

    /// Stages `key = value` (replacing any value and type, or adding the key). Undoable;
    /// written by the next save.
    pub fn set_metadata(&self, key: &str, value: MetaValue) -> Result<u64, ManagerError> {
        self.region()?;
        check_key(key).map_err(|why| EngineError::InvalidArgument {
            what: "metadata key",
            why,
        })?;
        self.refuse_split_key(key, "edited")?;
        check_metadata_value(key, &value).map_err(|why| EngineError::InvalidArgument {
            what: "metadata value",
            why,
        })?;
        let original = self.staged_value(key)?;
        let patch = MetadataPatch {
            key: key.to_string(),
            original: original.map(TypedValue),
            patched: Some(TypedValue(value.clone())),
        };
        let id = self.meta.push(
            vec![MetaEdit::Set(key.to_string(), value)],
            self.engine_top(),
            false,
        );
        self.record_metadata(id, vec![patch]);
        Ok(id)
    }

    /// The value `key` has with the pending edits applied (`None`: absent).
    fn staged_value(&self, key: &str) -> Result<Option<MetaValue>, ManagerError> {
        Ok(self
            .staged_metadata()?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v))
    }

    /// The metadata as it will be saved (the header's entries with the pending edits applied).
    pub fn staged_metadata(&self) -> Result<Vec<(String, MetaValue)>, ManagerError> {
        let index = self.engine().gguf(self.region()?)?;
        Ok(apply_edits(&index.metadata, &self.meta.pending()))
    }

    /// Stages the metadata patches of an imported configuration as one step of the undo
    /// timeline, joined to the engine step `change` the import made (if any), so one undo
    /// reverts the whole import. Returns the step id.
    pub(crate) fn stage_imported_metadata(
        &self,
        patches: &[MetadataPatch],
        change: Option<u64>,
    ) -> Option<u64> {
        if patches.is_empty() {
            return None;
        }
        let top = self.engine_top();
        let joined = change.is_some() && change == top;
        let id = self.meta.push(
            patches.iter().map(MetadataPatch::edit).collect(),
            top,
            joined,
        );
        self.record_metadata(id, patches.to_vec());
        Some(id)
    }

    /// Stages the removal of `key`. Refuses a key that the model (with pending edits) lacks.
    pub fn remove_metadata(&self, key: &str) -> Result<u64, ManagerError> {
        self.refuse_split_key(key, "removed")?;
        let current = self.metadata_view()?;
        if !current
            .iter()
            .any(|e| e.key == key && e.status != EntryStatus::Removed)
        {
            return Err(EngineError::InvalidArgument {
                what: "metadata key",
                why: format!("no metadata key '{key}' to remove"),
            }
            .into());
        }
        let original = self.staged_value(key)?;
        let id = self.meta.push(
            vec![MetaEdit::Remove(key.to_string())],
            self.engine_top(),
            false,
        );
        self.record_metadata(
            id,
            vec![MetadataPatch {
                key: key.to_string(),
                original: original.map(TypedValue),
                patched: None,
            }],
        );
        Ok(id)
    }

    /// The metadata as it will be saved: the current header's entries (in order) with the
    /// pending edits applied, each marked; removed keys stay in the list, marked removed.
    pub fn metadata_view(&self) -> Result<Vec<MetaEntryView>, ManagerError> {
        let region = self.region()?;
        let index = self.engine().gguf(region)?;
        let pending = self.meta.pending();
        let after = apply_edits(&index.metadata, &pending);
        let mut out = Vec::with_capacity(after.len());
        for e in &index.metadata {
            match after.iter().find(|(k, _)| *k == e.key) {
                Some((_, v)) => out.push(MetaEntryView {
                    key: e.key.clone(),
                    value: v.clone(),
                    status: if *v == e.value {
                        EntryStatus::Unchanged
                    } else {
                        EntryStatus::Changed
                    },
                    offset: Some(e.offset),
                }),
                None => out.push(MetaEntryView {
                    key: e.key.clone(),
                    value: e.value.clone(),
                    status: EntryStatus::Removed,
                    offset: Some(e.offset),
                }),
            }
        }
        for (k, v) in after {
            if index.entry(&k).is_none() {
                out.push(MetaEntryView {
                    key: k,
                    value: v,
                    status: EntryStatus::Added,
                    offset: None,
                });
            }
        }
        Ok(out)
    }

    /// Whether a save would write anything: pending metadata or staged bytes that differ.
    pub fn is_modified(&self) -> bool {
        if !self.meta.is_empty() {
            return true;
        }
        self.region()
            .ok()
            .and_then(|r| self.engine().differs_from_file(r).ok())
            .unwrap_or(false)
    }

    /// Whether [`Manager::undo`] has something to undo.
    pub fn can_undo(&self) -> bool {
        self.engine().can_undo() || !self.meta.is_empty()
    }

    /// Whether [`Manager::redo`] has something to redo.
    pub fn can_redo(&self) -> bool {
        self.engine().can_redo() || self.meta_redo_is_next()
    }

    fn meta_redo_is_next(&self) -> bool {
        let top = self.engine_top();
        self.meta
            .st
            .lock()
            .redo
            .last()
            .is_some_and(|e| e.after_engine == top && !e.joined)
    }

    /// Undoes the session's last step: the last metadata edit if no engine change came after
    /// it, else the engine's last change.
    pub fn undo(&self) -> Result<UndoOutcome, ManagerError> {
        let top = self.engine_top();
        let last = self
            .meta
            .st
            .lock()
            .undo
            .last()
            .filter(|e| e.after_engine == top)
            .map(|e| (e.id, e.joined));
        if let Some((id, joined)) = last {
            // A joined step undoes its engine part first (outside the journal lock: the
            // engine's events may call back into the manager); if that fails nothing moved.
            if joined {
                self.engine().undo()?;
            }
            let mut st = self.meta.st.lock();
            if let Some(pos) = st.undo.iter().rposition(|e| e.id == id) {
                let e = st.undo.remove(pos);
                st.redo.push(e);
            }
            return Ok(UndoOutcome {
                kind: StepKind::Metadata,
                id,
            });
        }
        let a = self.engine().undo()?;
        Ok(UndoOutcome {
            kind: StepKind::Engine,
            id: a.change.unwrap_or_default(),
        })
    }

    /// Undoes the session's steps, newest first, until engine change `change` is undone:
    /// metadata edits made after it go too (they come later on the one timeline), and so does
    /// the metadata of an import joined to it. Returns the number of steps undone.
    pub fn undo_through(&self, change: u64) -> Result<usize, ManagerError> {
        let in_history = || self.engine().history().iter().any(|h| h.id == change);
        if !in_history() {
            return Err(EngineError::invalid(
                "undo_through",
                format!("change #{change} is not in the undo history"),
            )
            .into());
        }
        let mut n = 0;
        while in_history() {
            self.undo()?;
            n += 1;
        }
        Ok(n)
    }

    /// Redoes the step undone last (see [`Manager::undo`]).
    pub fn redo(&self) -> Result<UndoOutcome, ManagerError> {
        let top = self.engine_top();
        {
            let mut st = self.meta.st.lock();
            if st
                .redo
                .last()
                .is_some_and(|e| e.after_engine == top && !e.joined)
            {
                let e = st.redo.pop().expect("checked non-empty");
                let id = e.id;
                st.undo.push(e);
                return Ok(UndoOutcome {
                    kind: StepKind::Metadata,
                    id,
                });
            }
        }
        let a = self.engine().redo()?;
        // The metadata part of a joined step comes back with its engine step.
        let top = self.engine_top();
        let mut st = self.meta.st.lock();
        if st
            .redo
            .last()
            .is_some_and(|e| e.joined && e.after_engine == top)
        {
            let e = st.redo.pop().expect("checked non-empty");
            st.undo.push(e);
        }
        Ok(UndoOutcome {
            kind: StepKind::Engine,
            id: a.change.unwrap_or_default(),
        })
    }

    /// The session's history: done steps oldest first, then undone steps in redo order
    /// (next redo first), metadata edits placed after the engine step they followed.
    pub fn session_history(&self) -> Vec<SessionStep> {
        let engine_done = self.engine().history();
        let mut engine_undone = self.engine().redo_history();
        engine_undone.reverse();
        let (meta_done, mut meta_undone) = self.meta.entries();
        meta_undone.reverse();
        let eng = |h: &HistoryEntry, undone| SessionStep {
            kind: StepKind::Engine,
            id: h.id,
            label: describe_origin(&h.origin),
            bytes: h.bytes,
            undone,
        };
        let meta = |m: &MetaJournalEntry, undone| SessionStep {
            kind: StepKind::Metadata,
            id: m.id,
            label: describe_edits(&m.edits),
            bytes: 0,
            undone,
        };
        let mut out = Vec::new();
        // Done: metadata edits with no engine step before them come first, then each engine
        // step followed by the metadata edits made right after it.
        let mut mi = meta_done.iter().peekable();
        while let Some(m) = mi.next_if(|m| m.after_engine.is_none()) {
            out.push(meta(m, false));
        }
        for h in &engine_done {
            out.push(eng(h, false));
            while let Some(m) = mi.next_if(|m| m.after_engine == Some(h.id)) {
                out.push(meta(m, false));
            }
        }
        out.extend(mi.map(|m| meta(m, false)));
        // Undone, in the order redo would replay them.
        let top = engine_done.last().map(|h| h.id);
        let mut mi = meta_undone.iter().peekable();
        while let Some(m) = mi.next_if(|m| m.after_engine == top) {
            out.push(meta(m, true));
        }
        for h in &engine_undone {
            out.push(eng(h, true));
            while let Some(m) = mi.next_if(|m| m.after_engine == Some(h.id)) {
                out.push(meta(m, true));
            }
        }
        out
    }

    /// The attached model's file and mapping mode.
    pub fn attached(&self) -> Result<(PathBuf, Mode), ManagerError> {
        let region = self.region()?;
        let info = self.engine().region_info(region)?;
        Ok((info.path, info.mode))
    }

    /// Saves the session into the model's own file (every shard of a split model). Without
    /// pending metadata edits this is the engine's in-place save of each file (changed ranges
    /// only, crash-safe per file; history kept). With them, the file holding the metadata (the
    /// first shard) is rewritten (new header, tensor data of the image copied) atomically, the
    /// other shards are saved in place, and the model is attached again in the same mode
    /// (history cleared). `progress` counts bytes over all files; returning `false` cancels
    /// (a file not yet written is then left as it was).
    pub fn save(&self, progress: ProgressFn<'_>) -> Result<SaveOutcome, ManagerError> {
        let shards = self.shards()?;
        let (path, mode) = self.attached()?;
        let sizes = self.shard_sizes(&shards)?;
        let rewrite = !self.meta.is_empty();
        let mut total = Totals::new(&sizes, progress);
        let mut bytes_written = 0;
        for (i, (_, region)) in shards.iter().enumerate() {
            bytes_written += if i == 0 && rewrite {
                self.write_image(&path, &mut |p| total.report(i, p))?
            } else {
                self.engine()
                    .save(*region, &mut |p| total.report(i, p))?
                    .bytes_written
            };
        }
        if rewrite {
            self.reattach_saved(&path, mode)?;
        }
        Ok(SaveOutcome {
            path,
            bytes_written,
            rewritten: rewrite,
            reattached: rewrite,
        })
    }

    /// Writes the session (staged tensor bytes and pending metadata) to `dest` as a new file,
    /// atomically, then attaches `dest` in the same mode, as "Save As" does in an editor (the
    /// original file is left unchanged; the history is cleared). Refuses the model's own file
    /// (use [`Manager::save`]). A split model is written as a split model of as many shards
    /// (see [`split_destinations`]); the returned path is the first shard's.
    pub fn save_as(
        &self,
        dest: impl AsRef<Path>,
        progress: ProgressFn<'_>,
    ) -> Result<SaveOutcome, ManagerError> {
        let shards = self.shards()?;
        let (_, mode) = self.attached()?;
        let dests = split_destinations(dest.as_ref(), shards.len());
        for d in &dests {
            let Some(d) = d.canonicalize().ok() else {
                continue;
            };
            if let Some((p, _)) = shards
                .iter()
                .find(|(p, _)| p.canonicalize().ok().as_deref() == Some(d.as_path()))
            {
                return Err(EngineError::InvalidArgument {
                    what: "save as",
                    why: format!(
                        "{} is a file of the open model itself; use Save",
                        p.display()
                    ),
                }
                .into());
            }
        }
        let sizes = self.shard_sizes(&shards)?;
        let mut total = Totals::new(&sizes, progress);
        let mut n = 0;
        for (i, ((_, region), d)) in shards.iter().zip(&dests).enumerate() {
            n += if i == 0 && !self.meta.is_empty() {
                self.write_image(d, &mut |p| total.report(i, p))?
            } else {
                self.engine()
                    .save_as(*region, d, &mut |p| total.report(i, p))?
            };
        }
        self.reattach_saved(&dests[0], mode)?;
        Ok(SaveOutcome {
            path: dests[0].clone(),
            bytes_written: n,
            rewritten: true,
            reattached: true,
        })
    }

    fn shard_sizes(&self, shards: &[(PathBuf, crate::RegionId)]) -> Result<Vec<u64>, ManagerError> {
        shards
            .iter()
            .map(|(_, r)| Ok(self.engine().region_info(*r)?.len))
            .collect()
    }

    /// Writes a new GGUF at `dest`: the image's header with the pending metadata applied and
    /// every tensor's bytes from the image. Returns the file size.
    fn write_image(&self, dest: &Path, progress: ProgressFn<'_>) -> Result<u64, ManagerError> {
        let region = self.region()?;
        let index = self.engine().gguf(region)?;
        let meta = apply_edits(&index.metadata, &self.meta.pending());
        let len = self.engine().region_info(region)?.len;
        let cancel = Cell::new(false);
        let result = self.engine().with_bytes(region, 0, len, |bytes| {
            let mut tensors = Vec::with_capacity(index.tensors.len());
            for t in &index.tensors {
                let data = usize::try_from(t.offset)
                    .ok()
                    .zip(usize::try_from(t.end()).ok())
                    .and_then(|(s, e)| bytes.get(s..e))
                    .ok_or_else(|| {
                        GgufError::Invalid(format!(
                            "tensor '{}' data [{:#x}, {:#x}) is outside the model ({len} bytes)",
                            t.name,
                            t.offset,
                            t.end()
                        ))
                    })?;
                tensors.push(TensorSpec {
                    name: t.name.clone(),
                    ty: t.ty,
                    dims: t.dims.clone(),
                    data: TensorData::Reader {
                        reader: Box::new(CancelReader {
                            data,
                            cancel: &cancel,
                        }),
                        len: t.nbytes,
                    },
                });
            }
            let mut report = |p: WriteProgress| {
                if !cancel.get()
                    && !progress(Progress {
                        done: p.done,
                        total: p.total,
                    })
                {
                    cancel.set(true);
                }
            };
            write_file(dest, index.version, &meta, tensors, &mut report)
        })?;
        match result {
            Ok(s) => Ok(s.file_size),
            Err(_) if cancel.get() => Err(EngineError::Cancelled.into()),
            Err(e) => Err(EngineError::Gguf {
                region,
                message: format!("writing {}: {e}", dest.display()),
            }
            .into()),
        }
    }

    /// Attaches the model again in another mode (staged ↔ live). Refuses while anything is
    /// unsaved: switching drops the staged image.
    pub fn switch_mode(&self, mode: Mode) -> Result<(), ManagerError> {
        let (path, current) = self.attached()?;
        if current == mode {
            return Ok(());
        }
        if self.is_modified() {
            return Err(EngineError::InvalidArgument {
                what: "mode",
                why: "save or undo the unsaved changes before switching mode".into(),
            }
            .into());
        }
        self.reattach_saved(&path, mode)?;
        Ok(())
    }
}
