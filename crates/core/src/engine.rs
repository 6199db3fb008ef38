//! The engine: regions, the one journal for every layer (undo/redo, groups, batches,
//! temporary patches), protection, saving, events.
//!
//! Everything is addressed as (region, offset, len). A [`Engine`] is a cheap clonable handle
//! (`Arc` inside) that is `Send + Sync`; its state sits behind a `parking_lot::RwLock`, so any
//! number of readers proceed together while one writer writes, and a Save holds only an
//! upgradable read lock (readers keep reading while the file is written).
//!
//! Every change goes through one path: validate everything (regions, bounds, protection,
//! overlaps) → capture the old bytes → write (live regions: journal first) → record one undo
//! entry (or append to the open group) → queue one [`Event`] → deliver events in order outside
//! the lock. Higher layers (tensors, diff, configurations) build on [`Engine::apply`] and
//! [`Engine::apply_computed`], tagging changes with an [`Origin`] ("who changed what").

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex, RwLock, RwLockUpgradableReadGuard};

use crate::error::{EngineError, Result};
use crate::event::{Bus, Event, Layer, Operation, Origin, Sink, Target};
use crate::image::{LiveSync, Mode, Progress, ProgressFn, Region, SaveReport};
use crate::rangeset::RangeSet;
use crate::wal::RecoveryReport;

/// Non-overlapping (offset, bytes) writes of one region, sorted by offset.
type RangeBytes = Vec<(u64, Vec<u8>)>;
/// Net writes per region.
type NetWrites = BTreeMap<RegionId, RangeBytes>;

/// Identifies a mapped region within one engine. Displayed as `region N` (in error messages:
/// the N-th file or window the engine mapped, counted from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(pub u32);

impl std::fmt::Display for RegionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "region {}", self.0)
    }
}

/// One write: `bytes` at (region, offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// The region.
    pub region: RegionId,
    /// Region-relative offset.
    pub offset: u64,
    /// The new bytes.
    pub bytes: Vec<u8>,
}

impl Patch {
    /// A patch.
    pub fn new(region: RegionId, offset: u64, bytes: impl Into<Vec<u8>>) -> Self {
        Patch {
            region,
            offset,
            bytes: bytes.into(),
        }
    }
}

/// One recorded change: what a range held before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The region.
    pub region: RegionId,
    /// Region-relative offset.
    pub offset: u64,
    /// Bytes before.
    pub old: Vec<u8>,
    /// Bytes after.
    pub new: Vec<u8>,
}

/// What an applied change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The undo-history entry it belongs to (`None` when no byte changed).
    pub change: Option<u64>,
    /// Bytes whose value changed.
    pub bytes_changed: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// The event emitted.
    pub event: u64,
}

/// A summary of one undo-history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Entry id.
    pub id: u64,
    /// Who changed what.
    pub origin: Origin,
    /// Number of recorded ranges.
    pub ranges: usize,
    /// Bytes covered by the ranges.
    pub bytes: u64,
}

/// A logical protection (read-only range or locked tensor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// Id (for [`Engine::unprotect`]).
    pub id: u64,
    /// The region.
    pub region: RegionId,
    /// Start (region-relative).
    pub start: u64,
    /// End, exclusive.
    pub end: u64,
    /// Why ("read-only", "tensor output.weight", ...).
    pub reason: String,
    /// Pages also protected in memory with the `region` crate: (offset, len), if any.
    pub pages: Option<(u64, u64)>,
}

/// What is known about a mapped region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    /// Id.
    pub id: RegionId,
    /// File path.
    pub path: PathBuf,
    /// Mapping mode.
    pub mode: Mode,
    /// Offset of the window in the file.
    pub file_offset: u64,
    /// Length of the window.
    pub len: u64,
    /// Length of the file.
    pub file_len: u64,
    /// Address of the first byte (for display only).
    pub address: usize,
    /// Bytes changed since the last save (staged).
    pub dirty_bytes: u64,
    /// Ranges changed since the last save (staged).
    pub dirty_ranges: usize,
    /// What recovery did when the region was opened, if a journal was found.
    pub recovered: Option<RecoveryReport>,
}

/// Options for opening/mapping a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOptions {
    /// Window `(offset, len)` of the file; `None` maps the whole file.
    pub window: Option<(u64, u64)>,
    /// Durability of live writes.
    pub live_sync: LiveSync,
}

struct Entry {
    id: u64,
    origin: Origin,
    changes: Vec<Change>,
}

struct OpenGroup {
    id: u64,
    origin: Origin,
    changes: Vec<Change>,
    /// Change count at each nested begin (index = depth - 1).
    marks: Vec<usize>,
}

struct TempRecord {
    origin: Origin,
    changes: Vec<Change>,
}

struct RegionSlot {
    region: Region,
    recovered: Option<RecoveryReport>,
}

#[derive(Default)]
pub(crate) struct State {
    regions: BTreeMap<RegionId, RegionSlot>,
    next_region: u32,
    undo: Vec<Entry>,
    redo: Vec<Entry>,
    group: Option<OpenGroup>,
    protections: Vec<Protection>,
    next_protection: u64,
    temps: HashMap<u64, TempRecord>,
    next_temp: u64,
    next_change: u64,
    next_event: u64,
}

/// A read-only view of the engine's regions, given to [`Engine::apply_computed`] and
/// [`Engine::view`] closures while the lock is held.
pub struct View<'a> {
    st: &'a State,
}

impl View<'_> {
    /// Bounds-checked bytes of a region.
    pub fn bytes(&self, region: RegionId, offset: u64, len: u64) -> Result<&[u8]> {
        let r = self.st.region(region)?;
        let range = r.range(offset, len)?;
        Ok(&r.bytes()[range])
    }

    /// Length of a region.
    pub fn len(&self, region: RegionId) -> Result<u64> {
        Ok(self.st.region(region)?.len)
    }

    /// The GGUF index of a region, or why there is none.
    pub fn gguf(&self, region: RegionId) -> Result<Arc<hotpatch_gguf::GgufIndex>> {
        match &self.st.region(region)?.gguf {
            Some(Ok(i)) => Ok(Arc::clone(i)),
            Some(Err(message)) => Err(EngineError::Gguf {
                region,
                message: message.clone(),
            }),
            None => Err(EngineError::Gguf {
                region,
                message: "not a whole GGUF file (no GGUF magic at offset 0, or a window)".into(),
            }),
        }
    }

    /// The protections in force.
    pub fn protections(&self) -> &[Protection] {
        &self.st.protections
    }

    /// Checks that a write to the range would be allowed (bounds, read-only, protection).
    pub fn check_writable(&self, region: RegionId, offset: u64, len: u64) -> Result<()> {
        self.st.check_writable(region, offset, len)
    }
}

impl State {
    fn region(&self, id: RegionId) -> Result<&Region> {
        self.regions
            .get(&id)
            .map(|s| &s.region)
            .ok_or(EngineError::NoSuchRegion(id))
    }

    fn region_mut(&mut self, id: RegionId) -> Result<&mut Region> {
        self.regions
            .get_mut(&id)
            .map(|s| &mut s.region)
            .ok_or(EngineError::NoSuchRegion(id))
    }

    fn check_writable(&self, region: RegionId, offset: u64, len: u64) -> Result<()> {
        let r = self.region(region)?;
        r.range(offset, len)?;
        if r.mode == Mode::ReadOnly {
            return Err(EngineError::ReadOnlyRegion(region));
        }
        let end = offset + len;
        for p in &self.protections {
            if p.region == region && p.start < end && offset < p.end && len > 0 {
                return Err(EngineError::Protected {
                    region,
                    offset,
                    len,
                    protected_start: p.start,
                    protected_end: p.end,
                    reason: p.reason.clone(),
                });
            }
        }
        Ok(())
    }

    fn next_event_id(&mut self) -> u64 {
        self.next_event += 1;
        self.next_event
    }

    fn next_change_id(&mut self) -> u64 {
        self.next_change += 1;
        self.next_change
    }

    /// Coalesces `changes` (applied in the given order, taking `pick(change)` as the bytes) into
    /// non-overlapping net writes per region, starting from the current bytes.
    fn net_writes<'c>(
        &self,
        changes: impl Iterator<Item = &'c Change> + Clone,
        pick: impl Fn(&Change) -> &[u8],
    ) -> Result<NetWrites> {
        let mut sets: BTreeMap<RegionId, RangeSet> = BTreeMap::new();
        for c in changes.clone() {
            sets.entry(c.region)
                .or_default()
                .insert(c.offset, c.offset + c.old.len() as u64);
        }
        let mut out = BTreeMap::new();
        for (rid, set) in sets {
            let r = self.region(rid)?;
            let mut bufs: Vec<(u64, Vec<u8>)> = Vec::with_capacity(set.len());
            for (s, e) in set.iter() {
                let range = r.range(s, e - s)?;
                bufs.push((s, r.bytes()[range].to_vec()));
            }
            for c in changes.clone().filter(|c| c.region == rid) {
                let src = pick(c);
                let idx = bufs.partition_point(|(s, _)| *s <= c.offset) - 1;
                let (s, buf) = &mut bufs[idx];
                let at = (c.offset - *s) as usize;
                buf[at..at + src.len()].copy_from_slice(src);
            }
            out.insert(rid, bufs);
        }
        Ok(out)
    }

    /// Validates then writes net writes (non-overlapping per region). On a failure in a later
    /// region, earlier regions are restored.
    fn write_net(&mut self, writes: &NetWrites, check: bool) -> Result<()> {
        if check {
            for (rid, ws) in writes {
                for (off, b) in ws {
                    self.check_writable(*rid, *off, b.len() as u64)?;
                }
            }
        }
        let mut done: Vec<(RegionId, RangeBytes)> = Vec::new();
        for (rid, ws) in writes {
            let r = self.region_mut(*rid)?;
            let olds: Vec<(u64, Vec<u8>)> = ws
                .iter()
                .map(|(off, b)| {
                    (
                        *off,
                        r.bytes()[*off as usize..*off as usize + b.len()].to_vec(),
                    )
                })
                .collect();
            let refs: Vec<(u64, &[u8])> = ws.iter().map(|(o, b)| (*o, b.as_slice())).collect();
            if let Err(e) = r.write_ranges(&refs) {
                for (prid, olds) in done.into_iter().rev() {
                    if let Ok(pr) = self.region_mut(prid) {
                        let refs: Vec<(u64, &[u8])> =
                            olds.iter().map(|(o, b)| (*o, b.as_slice())).collect();
                        let _ = pr.write_ranges(&refs);
                    }
                }
                return Err(e);
            }
            done.push((*rid, olds));
        }
        Ok(())
    }

    /// Records changes as one undo step, or appends them to the open group.
    fn record(&mut self, origin: &Origin, changes: Vec<Change>) -> Option<u64> {
        if changes.is_empty() {
            return self.group.as_ref().map(|g| g.id);
        }
        self.redo.clear();
        if let Some(g) = &mut self.group {
            g.changes.extend(changes);
            return Some(g.id);
        }
        let id = self.next_change_id();
        self.undo.push(Entry {
            id,
            origin: origin.clone(),
            changes,
        });
        Some(id)
    }
}

/// Validates a batch and turns it into trimmed changes (old/new of the bytes that differ).
fn prepare(st: &State, patches: &[Patch]) -> Result<(Vec<Change>, u64, u64)> {
    for p in patches {
        st.check_writable(p.region, p.offset, p.bytes.len() as u64)?;
    }
    // Overlaps make a batch's meaning depend on order: refuse them.
    let mut order: Vec<usize> = (0..patches.len()).collect();
    order.sort_by_key(|&i| (patches[i].region, patches[i].offset));
    for w in order.windows(2) {
        let (a, b) = (&patches[w[0]], &patches[w[1]]);
        if a.region == b.region
            && !a.bytes.is_empty()
            && b.offset < a.offset + a.bytes.len() as u64
            && !b.bytes.is_empty()
        {
            return Err(EngineError::OverlappingBatch {
                first: w[0].min(w[1]),
                second: w[0].max(w[1]),
                region: a.region,
                offset: b.offset,
            });
        }
    }
    let mut changes = Vec::new();
    let mut changed = 0u64;
    let mut written = 0u64;
    for p in patches {
        written += p.bytes.len() as u64;
        let r = st.region(p.region)?;
        let cur = &r.bytes()[r.range(p.offset, p.bytes.len() as u64)?];
        let Some(first) = cur.iter().zip(&p.bytes).position(|(a, b)| a != b) else {
            continue;
        };
        let last = cur
            .iter()
            .zip(&p.bytes)
            .rposition(|(a, b)| a != b)
            .unwrap_or(first);
        changed += cur.iter().zip(&p.bytes).filter(|(a, b)| a != b).count() as u64;
        changes.push(Change {
            region: p.region,
            offset: p.offset + first as u64,
            old: cur[first..=last].to_vec(),
            new: p.bytes[first..=last].to_vec(),
        });
    }
    Ok((changes, changed, written))
}

struct TimerShared {
    heap: Mutex<BinaryHeap<std::cmp::Reverse<(Instant, u64)>>>,
    cv: Condvar,
    stop: AtomicBool,
}

pub(crate) struct Inner {
    state: RwLock<State>,
    bus: Bus,
    timer: Arc<TimerShared>,
    timer_started: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.timer.stop.store(true, Ordering::SeqCst);
        self.timer.cv.notify_all();
        // Pending temporary patches must not outlive the engine (a live one would stay in the
        // file): revert them now, best effort.
        let st = self.state.get_mut();
        let ids: Vec<u64> = st.temps.keys().copied().collect();
        for id in ids {
            if let Some(t) = st.temps.remove(&id) {
                if let Ok(writes) = revert_writes(st, &t.changes) {
                    let _ = st.write_net(&writes, true);
                }
            }
        }
    }
}

/// Per byte: where the range still holds the patch's new value, put the old value back.
fn revert_writes(st: &State, changes: &[Change]) -> Result<NetWrites> {
    let mut out: NetWrites = BTreeMap::new();
    for c in changes.iter().rev() {
        let r = st.region(c.region)?;
        let cur = &r.bytes()[r.range(c.offset, c.new.len() as u64)?];
        let mut i = 0;
        while i < cur.len() {
            if cur[i] != c.new[i] || cur[i] == c.old[i] {
                i += 1;
                continue;
            }
            let s = i;
            while i < cur.len() && cur[i] == c.new[i] && cur[i] != c.old[i] {
                i += 1;
            }
            out.entry(c.region)
                .or_default()
                .push((c.offset + s as u64, c.old[s..i].to_vec()));
        }
    }
    for ws in out.values_mut() {
        ws.sort_by_key(|w| w.0);
    }
    Ok(out)
}

/// The edit engine. Clone it freely: clones share the same state.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("regions", &self.inner.state.read().regions.len())
            .finish()
    }
}

/// A group of changes that undo and redo as one step. Ends when dropped or [`Group::end`]ed;
/// [`Group::abort`] reverts what was done inside it instead.
#[must_use = "a group ends when dropped"]
pub struct Group<'e> {
    engine: &'e Engine,
    done: bool,
}

impl Group<'_> {
    /// Ends the group (the outermost end records it as one undo step).
    pub fn end(mut self) -> Result<Option<u64>> {
        self.done = true;
        self.engine.end_group()
    }

    /// Reverts every change made since this group (level) began, and ends it.
    /// If the revert is refused (a range was locked since), the changes are kept, the group
    /// level ends normally and the error says why.
    pub fn abort(mut self) -> Result<()> {
        self.done = true;
        let result = self.engine.abort_group();
        if result.is_err() {
            let _ = self.engine.end_group();
        }
        result
    }
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.engine.end_group();
        }
    }
}

/// A temporary patch: reverts itself when dropped, when its time is up, or on
/// [`TemporaryPatch::revert`]. [`TemporaryPatch::keep`] makes it permanent.
#[must_use = "a temporary patch reverts when its guard is dropped"]
pub struct TemporaryPatch {
    id: u64,
    engine: Weak<Inner>,
    armed: bool,
}

impl TemporaryPatch {
    /// The patch's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Reverts now. `Ok(None)` when it had already reverted (timer).
    pub fn revert(mut self) -> Result<Option<Applied>> {
        self.armed = false;
        match self.engine.upgrade() {
            Some(inner) => Engine { inner }.revert_temporary(self.id),
            None => Ok(None),
        }
    }

    /// Keeps the patch: it no longer reverts (it stays an ordinary undoable change).
    pub fn keep(mut self) {
        self.armed = false;
        if let Some(inner) = self.engine.upgrade() {
            inner.state.write().temps.remove(&self.id);
        }
    }
}

impl Drop for TemporaryPatch {
    fn drop(&mut self) {
        if self.armed {
            if let Some(inner) = self.engine.upgrade() {
                let _ = Engine { inner }.revert_temporary(self.id);
            }
        }
    }
}

impl Engine {
    /// An engine with no region.
    pub fn new() -> Engine {
        Engine {
            inner: Arc::new(Inner {
                state: RwLock::new(State::default()),
                bus: Bus::default(),
                timer: Arc::new(TimerShared {
                    heap: Mutex::new(BinaryHeap::new()),
                    cv: Condvar::new(),
                    stop: AtomicBool::new(false),
                }),
                timer_started: AtomicBool::new(false),
            }),
        }
    }

    // ----- events -----------------------------------------------------------------------

    /// A channel receiving every event from now on, in order.
    pub fn subscribe(&self) -> std::sync::mpsc::Receiver<Event> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.inner.bus.add(Sink::Channel(tx));
        rx
    }

    /// Calls `f` for every event from now on, in order, outside the engine's lock.
    pub fn on_event(&self, f: impl Fn(&Event) + Send + Sync + 'static) {
        self.inner.bus.add(Sink::Callback(Arc::new(f)));
    }

    fn emit(
        &self,
        st: &mut State,
        origin: Origin,
        change: Option<u64>,
        changed: u64,
        written: u64,
        undoable: bool,
    ) -> u64 {
        let id = st.next_event_id();
        self.inner.bus.queue(Event {
            id,
            change,
            origin,
            bytes_changed: changed,
            bytes_written: written,
            time: SystemTime::now(),
            undoable,
        });
        id
    }

    fn flush(&self) {
        self.inner.bus.flush();
    }

    // ----- regions ------------------------------------------------------------------------

    /// Opens a file as a region (the model image) in `mode`. A journal left by a crash is
    /// rolled forward first (see [`crate::wal`]), reported in [`RegionInfo::recovered`] and as
    /// a [`Operation::Recovered`] event.
    ///
    /// While a region is open, other programs must not truncate or rewrite the file (reading
    /// it, as llama.cpp does, is fine).
    pub fn open(&self, path: impl AsRef<Path>, mode: Mode) -> Result<RegionId> {
        self.map_region(path, mode, OpenOptions::default())
    }

    /// Maps a file or a window of it as an extra addressable region.
    pub fn map_region(
        &self,
        path: impl AsRef<Path>,
        mode: Mode,
        opts: OpenOptions,
    ) -> Result<RegionId> {
        let path = path.as_ref();
        let mut st = self.inner.state.write();
        let id = RegionId(st.next_region);
        let (region, recovered) = Region::open(id, path, mode, opts.window, opts.live_sync)?;
        st.next_region += 1;
        if let Some(rep) = &recovered {
            let o = Origin::new(
                Layer::Engine,
                Operation::Recovered,
                Target::File(path.to_path_buf()),
            );
            self.emit(
                &mut st,
                o,
                None,
                rep.bytes - rep.already_new,
                rep.bytes,
                false,
            );
        }
        let len = region.len;
        st.regions.insert(id, RegionSlot { region, recovered });
        let o = Origin::new(
            Layer::Engine,
            Operation::MapRegion,
            Target::Range {
                region: id,
                offset: 0,
                len,
            },
        );
        self.emit(&mut st, o, None, 0, 0, false);
        drop(st);
        self.flush();
        Ok(id)
    }

    /// Unmaps a region. Undo entries that touch it are dropped from the history (they could
    /// not be undone any more); unsaved staged changes are discarded, so save first.
    pub fn unmap_region(&self, id: RegionId) -> Result<()> {
        let mut st = self.inner.state.write();
        if !st.regions.contains_key(&id) {
            return Err(EngineError::NoSuchRegion(id));
        }
        if st
            .group
            .as_ref()
            .is_some_and(|g| g.changes.iter().any(|c| c.region == id))
        {
            return Err(EngineError::Group(format!(
                "{id} has changes in the open group"
            )));
        }
        st.undo.retain(|e| e.changes.iter().all(|c| c.region != id));
        st.redo.retain(|e| e.changes.iter().all(|c| c.region != id));
        st.temps
            .retain(|_, t| t.changes.iter().all(|c| c.region != id));
        st.protections.retain(|p| p.region != id);
        st.regions.remove(&id);
        self.emit(
            &mut st,
            Origin::new(Layer::Engine, Operation::UnmapRegion, Target::Region(id)),
            None,
            0,
            0,
            false,
        );
        drop(st);
        self.flush();
        Ok(())
    }

    /// Information on a region.
    pub fn region_info(&self, id: RegionId) -> Result<RegionInfo> {
        let st = self.inner.state.read();
        let slot = st.regions.get(&id).ok_or(EngineError::NoSuchRegion(id))?;
        Ok(info(slot))
    }

    /// Whether the region's bytes differ from its file now: false once a save wrote them, and
    /// false again when undo (or redo) returned every changed byte to the saved value.
    pub fn differs_from_file(&self, id: RegionId) -> Result<bool> {
        let st = self.inner.state.read();
        Ok(st.region(id)?.differs_from_file())
    }

    /// Every mapped region.
    pub fn regions(&self) -> Vec<RegionInfo> {
        self.inner.state.read().regions.values().map(info).collect()
    }

    // ----- reading ------------------------------------------------------------------------

    /// Copies bytes out of a region.
    pub fn read(&self, region: RegionId, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.with_bytes(region, offset, len, <[u8]>::to_vec)
    }

    /// Runs `f` on a bounds-checked view of the bytes, under the read lock.
    pub fn with_bytes<R>(
        &self,
        region: RegionId,
        offset: u64,
        len: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let st = self.inner.state.read();
        let r = st.region(region)?;
        let range = r.range(offset, len)?;
        Ok(f(&r.bytes()[range]))
    }

    /// Runs `f` on a view of every region, under the read lock.
    pub fn view<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        let st = self.inner.state.read();
        f(&View { st: &st })
    }

    // ----- writing ------------------------------------------------------------------------

    /// Applies a batch of writes, all or nothing: every write is validated (region, bounds,
    /// read-only, protection, no overlap) before any byte changes; then they form one undo
    /// step (or join the open group) and one event.
    pub fn apply(&self, origin: Origin, patches: Vec<Patch>) -> Result<Applied> {
        self.apply_computed(origin, |_| Ok(patches))
    }

    /// Like [`Engine::apply`], with the patches computed by `f` from the current bytes under
    /// the write lock (no other writer can intervene between reading and writing).
    pub fn apply_computed(
        &self,
        origin: Origin,
        f: impl FnOnce(&View<'_>) -> Result<Vec<Patch>>,
    ) -> Result<Applied> {
        let mut st = self.inner.state.write();
        let patches = f(&View { st: &st })?;
        let applied = self.commit(&mut st, origin, &patches)?;
        drop(st);
        self.flush();
        Ok(applied)
    }

    fn commit(&self, st: &mut State, origin: Origin, patches: &[Patch]) -> Result<Applied> {
        let (changes, changed, written) = prepare(st, patches)?;
        let writes = st.net_writes(changes.iter(), |c| &c.new)?;
        st.write_net(&writes, false)?;
        let change = st.record(&origin, changes);
        let event = self.emit(st, origin, change, changed, written, true);
        Ok(Applied {
            change,
            bytes_changed: changed,
            bytes_written: written,
            event,
        })
    }

    /// Gives `f` a mutable scratch copy of the range; what it changes is written back through
    /// the journal (one undo step, one event). This is the journaled form of a `&mut [u8]` view.
    pub fn update<R>(
        &self,
        origin: Origin,
        region: RegionId,
        offset: u64,
        len: u64,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<(R, Applied)> {
        let mut out = None;
        let applied = self.apply_computed(origin, |v| {
            v.check_writable(region, offset, len)?;
            let mut buf = v.bytes(region, offset, len)?.to_vec();
            out = Some(f(&mut buf));
            Ok(vec![Patch {
                region,
                offset,
                bytes: buf,
            }])
        })?;
        out.map(|r| (r, applied))
            .ok_or_else(|| EngineError::invalid("update", "closure not run"))
    }

    // ----- undo / redo / groups -------------------------------------------------------------

    /// Undoes the last change (or group). Protection applies: a change inside a range locked
    /// since cannot be undone until it is unlocked.
    pub fn undo(&self) -> Result<Applied> {
        self.undo_redo(true)
    }

    /// Redoes the last undone change.
    pub fn redo(&self) -> Result<Applied> {
        self.undo_redo(false)
    }

    fn undo_redo(&self, undo: bool) -> Result<Applied> {
        let mut st = self.inner.state.write();
        if st.group.is_some() {
            return Err(EngineError::Group(
                "end the open group before undo/redo".into(),
            ));
        }
        let entry = if undo { st.undo.pop() } else { st.redo.pop() };
        let Some(entry) = entry else {
            return Err(EngineError::NothingTo(if undo { "undo" } else { "redo" }));
        };
        let writes = if undo {
            st.net_writes(entry.changes.iter().rev(), |c| &c.old)
        } else {
            st.net_writes(entry.changes.iter(), |c| &c.new)
        };
        let result = writes.and_then(|w| st.write_net(&w, true).map(|()| w));
        let writes = match result {
            Ok(w) => w,
            Err(e) => {
                if undo {
                    st.undo.push(entry)
                } else {
                    st.redo.push(entry)
                }
                return Err(e);
            }
        };
        let bytes: u64 = writes.values().flatten().map(|(_, b)| b.len() as u64).sum();
        let changed: u64 = entry
            .changes
            .iter()
            .map(|c| c.old.iter().zip(&c.new).filter(|(a, b)| a != b).count() as u64)
            .sum();
        let mut origin = entry.origin.clone();
        origin.operation = if undo {
            Operation::Undo
        } else {
            Operation::Redo
        };
        let id = entry.id;
        if undo {
            st.redo.push(entry)
        } else {
            st.undo.push(entry)
        }
        let event = self.emit(&mut st, origin, Some(id), changed, bytes, true);
        drop(st);
        self.flush();
        Ok(Applied {
            change: Some(id),
            bytes_changed: changed,
            bytes_written: bytes,
            event,
        })
    }

    /// Undoes the history back to entry `id` included (every later entry first, newest
    /// first); returns the number of steps undone. Refused, changing nothing, when `id` is
    /// not in the undo history. Stops at the first step that cannot be undone (a protected
    /// range) with its error; the steps already undone stay undone (and can be redone).
    pub fn undo_through(&self, id: u64) -> Result<usize> {
        let mut n = 0;
        loop {
            // Checked before every step: another thread may have undone it meanwhile.
            if !self.inner.state.read().undo.iter().any(|e| e.id == id) {
                if n > 0 {
                    return Ok(n);
                }
                return Err(EngineError::invalid(
                    "undo_through",
                    format!("change #{id} is not in the undo history"),
                ));
            }
            let applied = self.undo()?;
            n += 1;
            if applied.change == Some(id) {
                return Ok(n);
            }
        }
    }

    /// Undoes everything; returns the number of steps undone.
    pub fn undo_all(&self) -> Result<usize> {
        let mut n = 0;
        while self.can_undo() {
            self.undo()?;
            n += 1;
        }
        Ok(n)
    }

    /// Redoes everything undone; returns the number of steps redone.
    pub fn redo_all(&self) -> Result<usize> {
        let mut n = 0;
        while self.can_redo() {
            self.redo()?;
            n += 1;
        }
        Ok(n)
    }

    /// Whether there is something to undo.
    pub fn can_undo(&self) -> bool {
        !self.inner.state.read().undo.is_empty()
    }

    /// Whether there is something to redo.
    pub fn can_redo(&self) -> bool {
        !self.inner.state.read().redo.is_empty()
    }

    /// The undo history, oldest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.inner
            .state
            .read()
            .undo
            .iter()
            .map(|e| summary(e.id, &e.origin, &e.changes))
            .collect()
    }

    /// The redo stack, next redo last.
    pub fn redo_history(&self) -> Vec<HistoryEntry> {
        self.inner
            .state
            .read()
            .redo
            .iter()
            .map(|e| summary(e.id, &e.origin, &e.changes))
            .collect()
    }

    /// The recorded changes of one history entry (undo or redo stack): who changed what.
    pub fn changes_of(&self, id: u64) -> Option<Vec<Change>> {
        let st = self.inner.state.read();
        st.undo
            .iter()
            .chain(&st.redo)
            .find(|e| e.id == id)
            .map(|e| e.changes.clone())
    }

    /// Begins a group: every change until the matching end is one undo step. Groups nest (the
    /// outermost defines the step). Groups are engine-wide: changes from any thread join the
    /// open group.
    pub fn begin_group(&self, origin: Origin) -> Group<'_> {
        let mut st = self.inner.state.write();
        let st = &mut *st;
        match &mut st.group {
            Some(g) => g.marks.push(g.changes.len()),
            None => {
                let id = st.next_change_id();
                st.group = Some(OpenGroup {
                    id,
                    origin,
                    changes: Vec::new(),
                    marks: vec![0],
                });
            }
        }
        Group {
            engine: self,
            done: false,
        }
    }

    /// Runs `f` inside a group; if it fails, everything it changed is reverted.
    pub fn group<T>(&self, origin: Origin, f: impl FnOnce(&Engine) -> Result<T>) -> Result<T> {
        let g = self.begin_group(origin);
        match f(self) {
            Ok(v) => {
                g.end()?;
                Ok(v)
            }
            Err(e) => {
                g.abort()?;
                Err(e)
            }
        }
    }

    fn end_group(&self) -> Result<Option<u64>> {
        let mut st = self.inner.state.write();
        let Some(g) = &mut st.group else {
            return Err(EngineError::Group("no open group".into()));
        };
        g.marks.pop();
        if !g.marks.is_empty() {
            return Ok(Some(g.id));
        }
        let Some(g) = st.group.take() else {
            return Ok(None);
        };
        if g.changes.is_empty() {
            return Ok(None);
        }
        let changed: u64 = g
            .changes
            .iter()
            .map(|c| c.old.iter().zip(&c.new).filter(|(a, b)| a != b).count() as u64)
            .sum();
        let written: u64 = g.changes.iter().map(|c| c.new.len() as u64).sum();
        let mut origin = g.origin.clone();
        if matches!(origin.operation, Operation::Other(_)) {
            // keep the caller's name
        } else {
            origin.operation = Operation::Group;
        }
        st.redo.clear();
        st.undo.push(Entry {
            id: g.id,
            origin: origin.clone(),
            changes: g.changes,
        });
        self.emit(&mut st, origin, Some(g.id), changed, written, true);
        drop(st);
        self.flush();
        Ok(Some(g.id))
    }

    fn abort_group(&self) -> Result<()> {
        let mut st = self.inner.state.write();
        let Some(g) = &mut st.group else {
            return Err(EngineError::Group("no open group".into()));
        };
        let mark = g.marks.pop().unwrap_or(0);
        let undone: Vec<Change> = g.changes.split_off(mark);
        let outermost = g.marks.is_empty();
        let id = g.id;
        let origin = g.origin.clone();
        // Protection is checked here too: a range locked since the group began may be under
        // page protection, and no write path may ever touch such a page.
        let writes = st
            .net_writes(undone.iter().rev(), |c| &c.old)
            .and_then(|w| st.write_net(&w, true).map(|()| w));
        let writes = match writes {
            Ok(w) => w,
            Err(e) => {
                if let Some(g) = &mut st.group {
                    g.changes.extend(undone);
                    g.marks.push(mark);
                }
                return Err(e);
            }
        };
        if outermost {
            let rest = st.group.take().map(|g| g.changes).unwrap_or_default();
            if !rest.is_empty() {
                st.undo.push(Entry {
                    id,
                    origin: origin.clone(),
                    changes: rest,
                });
            }
        }
        let bytes: u64 = writes.values().flatten().map(|(_, b)| b.len() as u64).sum();
        let mut o = origin;
        o.operation = Operation::Undo;
        self.emit(&mut st, o, Some(id), bytes, bytes, false);
        drop(st);
        self.flush();
        Ok(())
    }

    // ----- temporary patches ---------------------------------------------------------------

    /// Applies patches that revert by themselves: when the returned guard is dropped or, if
    /// `revert_after` is given, when that time has passed (a std timer thread; no async
    /// runtime). The apply and the revert are ordinary journal entries with events. A revert
    /// only restores bytes that still hold the patched value (later edits are kept).
    pub fn apply_temporary(
        &self,
        mut origin: Origin,
        patches: Vec<Patch>,
        revert_after: Option<Duration>,
    ) -> Result<TemporaryPatch> {
        origin.operation = Operation::TemporaryApply;
        let mut st = self.inner.state.write();
        let (changes, _, _) = prepare(&st, &patches)?;
        self.commit(&mut st, origin.clone(), &patches)?;
        st.next_temp += 1;
        let id = st.next_temp;
        st.temps.insert(id, TempRecord { origin, changes });
        drop(st);
        self.flush();
        if let Some(d) = revert_after {
            self.schedule(id, Instant::now() + d);
        }
        Ok(TemporaryPatch {
            id,
            engine: Arc::downgrade(&self.inner),
            armed: true,
        })
    }

    /// Temporary patches not yet reverted.
    pub fn pending_temporary(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.inner.state.read().temps.keys().copied().collect();
        v.sort_unstable();
        v
    }

    fn revert_temporary(&self, id: u64) -> Result<Option<Applied>> {
        let mut st = self.inner.state.write();
        let Some(t) = st.temps.remove(&id) else {
            return Ok(None);
        };
        let mut origin = t.origin.clone();
        origin.layer = Layer::Engine;
        origin.operation = Operation::TemporaryRevert;
        let result = revert_writes(&st, &t.changes).and_then(|w| {
            let patches: Vec<Patch> = w
                .into_iter()
                .flat_map(|(region, ws)| {
                    ws.into_iter().map(move |(offset, bytes)| Patch {
                        region,
                        offset,
                        bytes,
                    })
                })
                .collect();
            self.commit(&mut st, origin.clone(), &patches)
        });
        match result {
            Ok(a) => {
                drop(st);
                self.flush();
                Ok(Some(a))
            }
            Err(e) => {
                origin.operation = Operation::TemporaryRevertFailed(e.to_string());
                self.emit(&mut st, origin, None, 0, 0, false);
                drop(st);
                self.flush();
                Err(e)
            }
        }
    }

    fn schedule(&self, id: u64, at: Instant) {
        let shared = Arc::clone(&self.inner.timer);
        shared.heap.lock().push(std::cmp::Reverse((at, id)));
        shared.cv.notify_all();
        if self.inner.timer_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("hotpatch-temp-revert".into())
            .spawn(move || loop {
                let mut heap = shared.heap.lock();
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                let now = Instant::now();
                match heap.peek().copied() {
                    Some(std::cmp::Reverse((t, id))) if t <= now => {
                        heap.pop();
                        drop(heap);
                        let Some(inner) = weak.upgrade() else { return };
                        let _ = Engine { inner }.revert_temporary(id);
                    }
                    Some(std::cmp::Reverse((t, _))) => {
                        shared.cv.wait_for(&mut heap, t - now);
                    }
                    None => {
                        shared.cv.wait_for(&mut heap, Duration::from_secs(3600));
                    }
                }
            });
        if spawned.is_err() {
            self.inner.timer_started.store(false, Ordering::SeqCst);
        }
    }

    // ----- protection ---------------------------------------------------------------------

    /// Makes `offset..offset+len` read-only for every layer (writes fail with
    /// [`EngineError::Protected`]). With `pages`, the whole memory pages inside the range are
    /// also made read-only with the `region` crate (a stray pointer write would fault instead
    /// of corrupting). Returns the protection's id.
    pub fn protect(
        &self,
        region: RegionId,
        offset: u64,
        len: u64,
        reason: impl Into<String>,
        pages: bool,
    ) -> Result<u64> {
        let mut st = self.inner.state.write();
        let r = st.region(region)?;
        r.range(offset, len)?;
        let page_span = if pages {
            r.whole_pages(offset, len)
        } else {
            None
        };
        if let Some((po, pl)) = page_span {
            r.set_page_protection(po, pl, true)?;
        }
        st.next_protection += 1;
        let id = st.next_protection;
        let reason = reason.into();
        st.protections.push(Protection {
            id,
            region,
            start: offset,
            end: offset + len,
            reason,
            pages: page_span,
        });
        if let Some(span) = page_span {
            st.region_mut(region)?.page_locked.push(span);
        }
        self.emit(
            &mut st,
            Origin::new(
                Layer::Memory,
                Operation::Protect,
                Target::Range {
                    region,
                    offset,
                    len,
                },
            ),
            None,
            0,
            0,
            false,
        );
        drop(st);
        self.flush();
        Ok(id)
    }

    /// Removes a protection (and its page protection, unless another protection still
    /// covers those pages).
    pub fn unprotect(&self, id: u64) -> Result<Protection> {
        let mut st = self.inner.state.write();
        let pos = st
            .protections
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| {
                EngineError::invalid("protection id", format!("{id} is not in force"))
            })?;
        let p = st.protections.remove(pos);
        if let Some((po, pl)) = p.pages {
            let others: Vec<(u64, u64)> = st
                .protections
                .iter()
                .filter(|q| q.region == p.region)
                .filter_map(|q| q.pages)
                .collect();
            let r = st.region_mut(p.region)?;
            if let Some(i) = r.page_locked.iter().position(|s| *s == (po, pl)) {
                r.page_locked.remove(i);
            }
            r.set_page_protection(po, pl, false)?;
            for (qo, ql) in others {
                if qo < po + pl && po < qo + ql {
                    r.set_page_protection(qo, ql, true)?;
                }
            }
        }
        let t = Target::Range {
            region: p.region,
            offset: p.start,
            len: p.end - p.start,
        };
        self.emit(
            &mut st,
            Origin::new(Layer::Memory, Operation::Unprotect, t),
            None,
            0,
            0,
            false,
        );
        drop(st);
        self.flush();
        Ok(p)
    }

    /// The protections in force.
    pub fn protections(&self) -> Vec<Protection> {
        self.inner.state.read().protections.clone()
    }

    // ----- what changed since open (for an engine computing from the same file) -----------

    /// The id of the last event emitted (0 before any): it moves whenever any byte of any
    /// region may have changed, so a reader that remembers it can tell, in O(1), whether it
    /// must look again (the embedded inference engine checks it before every token).
    pub fn last_event_id(&self) -> u64 {
        self.inner.state.read().next_event
    }

    /// Every range of `region` that a recorded change covers (the undo and redo histories and
    /// an open group), merged and sorted: outside them the region's bytes are the bytes it had
    /// when opened. Ranges stay listed after an undo (the bytes are back, but a copy made
    /// in between may not be).
    pub fn touched_ranges(&self, region: RegionId) -> Vec<(u64, u64)> {
        let st = self.inner.state.read();
        let mut set = RangeSet::new();
        let group = st.group.iter().flat_map(|g| g.changes.iter());
        for c in st
            .undo
            .iter()
            .chain(&st.redo)
            .flat_map(|e| e.changes.iter())
            .chain(group)
        {
            if c.region == region && !c.old.is_empty() {
                set.insert(c.offset, c.offset + c.old.len() as u64);
            }
        }
        set.iter().collect()
    }

    /// The bytes `offset..offset+len` of `region` held before every change now in effect: the
    /// current bytes with each applied change (an open group's, then the undo history's,
    /// newest first) reverted. That is the region as opened, as far as the history reaches
    /// (a re-attach after a metadata save starts a new history).
    pub fn original_bytes(&self, region: RegionId, offset: u64, len: u64) -> Result<Vec<u8>> {
        let st = self.inner.state.read();
        let r = st.region(region)?;
        let mut buf = r.bytes()[r.range(offset, len)?].to_vec();
        let end = offset + len;
        let group = st.group.iter().flat_map(|g| g.changes.iter()).rev();
        let undo = st.undo.iter().rev().flat_map(|e| e.changes.iter().rev());
        for c in group.chain(undo) {
            let c_end = c.offset + c.old.len() as u64;
            if c.region != region || c_end <= offset || c.offset >= end {
                continue;
            }
            let s = c.offset.max(offset);
            let e = c_end.min(end);
            buf[(s - offset) as usize..(e - offset) as usize]
                .copy_from_slice(&c.old[(s - c.offset) as usize..(e - c.offset) as usize]);
        }
        Ok(buf)
    }

    // ----- saving -------------------------------------------------------------------------

    /// Saves a staged region in place: only the ranges that differ from the file are written,
    /// through the crash-safety journal. Live regions are flushed. Readers proceed meanwhile.
    /// `progress` counts bytes; cancelling is honoured until the journal is written. The
    /// callback runs under the engine's lock: it must not call back into the engine.
    pub fn save(&self, region: RegionId, progress: ProgressFn<'_>) -> Result<SaveReport> {
        let st = self.inner.state.upgradable_read();
        let report = st.region(region)?.save(progress)?;
        let mut st = RwLockUpgradableReadGuard::upgrade(st);
        let path = {
            let r = st.region_mut(region)?;
            r.dirty.clear();
            r.path.clone()
        };
        let o = Origin::new(Layer::Engine, Operation::Save, Target::File(path));
        self.emit(
            &mut st,
            o,
            None,
            report.bytes_written,
            report.bytes_written,
            false,
        );
        drop(st);
        self.flush();
        Ok(report)
    }

    /// Writes the region's current bytes to `dest` atomically (temp + fsync + rename). The
    /// region stays attached to its own file (this is "save a copy"). Returns bytes written.
    pub fn save_as(
        &self,
        region: RegionId,
        dest: impl AsRef<Path>,
        progress: ProgressFn<'_>,
    ) -> Result<u64> {
        let dest = dest.as_ref();
        let st = self.inner.state.upgradable_read();
        let n = st.region(region)?.save_as(dest, progress)?;
        let mut st = RwLockUpgradableReadGuard::upgrade(st);
        let o = Origin::new(
            Layer::Engine,
            Operation::SaveAs,
            Target::File(dest.to_path_buf()),
        );
        self.emit(&mut st, o, None, 0, n, false);
        drop(st);
        self.flush();
        Ok(n)
    }
}

fn info(slot: &RegionSlot) -> RegionInfo {
    let r = &slot.region;
    RegionInfo {
        id: r.id,
        path: r.path.clone(),
        mode: r.mode,
        file_offset: r.file_offset,
        len: r.len,
        file_len: r.file_len,
        address: r.bytes().as_ptr() as usize,
        dirty_bytes: r.dirty.total(),
        dirty_ranges: r.dirty.len(),
        recovered: slot.recovered.clone(),
    }
}

fn summary(id: u64, origin: &Origin, changes: &[Change]) -> HistoryEntry {
    HistoryEntry {
        id,
        origin: origin.clone(),
        ranges: changes.len(),
        bytes: changes.iter().map(|c| c.new.len() as u64).sum(),
    }
}

/// A no-op progress callback.
pub fn no_progress() -> impl FnMut(Progress) -> bool {
    |_| true
}
