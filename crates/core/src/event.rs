//! Patch events: one for every change the engine makes (and for saves, protections, maps).
//!
//! The core knows no transport: subscribers get events in order through a
//! [`std::sync::mpsc::Receiver`] ([`crate::Engine::subscribe`]) or a callback
//! ([`crate::Engine::on_event`]). The desktop shell and the CLI map them to their own payloads.
//! Events are delivered outside the engine's lock, so a callback may call back into the engine.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use std::collections::VecDeque;

use crate::RegionId;

/// Which layer asked for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// The memory layer: memory of the attached model (offsets, views).
    Memory,
    /// The bytes layer: raw bytes of any file.
    Bytes,
    /// The tensor layer: tensors (by name and element).
    Tensor,
    /// The server layer: the request/response proxy.
    Server,
    /// The unified manager (presets, configurations).
    Manager,
    /// The engine itself (undo/redo, save, recovery, temporary reverts).
    Engine,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Write bytes.
    Write,
    /// Many writes, all or nothing.
    WriteBatch,
    /// Fill with a pattern.
    Fill,
    /// memmove-style copy.
    Copy,
    /// Swap two ranges.
    Swap,
    /// XOR with a repeating key.
    XorKey,
    /// A bit operation (name in the string: "and", "shl3", ...).
    BitOp(String),
    /// Rotate a range by n bytes.
    RotateRange,
    /// Reverse a range.
    Reverse,
    /// Reverse byte order per element of a width.
    ReverseElements,
    /// Undo of an earlier change.
    Undo,
    /// Redo of an undone change.
    Redo,
    /// A group of changes closed (one undo step).
    Group,
    /// A temporary patch was applied.
    TemporaryApply,
    /// A temporary patch reverted itself (timer or guard drop).
    TemporaryRevert,
    /// A temporary patch could not revert (e.g. the range was locked since).
    TemporaryRevertFailed(String),
    /// Changed ranges written back in place.
    Save,
    /// A whole copy written to a new file.
    SaveAs,
    /// A journal was rolled forward at open.
    Recovered,
    /// A range became read-only / locked.
    Protect,
    /// A protection was removed.
    Unprotect,
    /// A region was mapped.
    MapRegion,
    /// A region was unmapped.
    UnmapRegion,
    /// Anything a higher layer defines (tensor transforms, presets, ...).
    Other(String),
}

/// What a change addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// One range of a region.
    Range {
        /// The region.
        region: RegionId,
        /// Region-relative start.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Several ranges (a batch); the first one and the count.
    Ranges {
        /// The region of the first range.
        region: RegionId,
        /// Start of the first range.
        offset: u64,
        /// How many ranges.
        count: usize,
    },
    /// A tensor by name (region and the tensor's name).
    Tensor {
        /// The region.
        region: RegionId,
        /// Tensor name.
        name: String,
    },
    /// A whole region.
    Region(RegionId),
    /// A file on disk.
    File(std::path::PathBuf),
    /// Nothing in particular.
    None,
}

/// Who asked for a change and why: carried into the event and the undo history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The layer.
    pub layer: Layer,
    /// The operation.
    pub operation: Operation,
    /// The target.
    pub target: Target,
    /// Free text naming the actor (a preset, a configuration file, "ui", "cli", ...), if any.
    pub source: Option<Arc<str>>,
}

impl Origin {
    /// An origin with no source.
    pub fn new(layer: Layer, operation: Operation, target: Target) -> Self {
        Origin {
            layer,
            operation,
            target,
            source: None,
        }
    }

    /// Sets the source (who changed it).
    pub fn with_source(mut self, source: impl Into<Arc<str>>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// One patch event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Increasing id, unique per engine; delivery follows it.
    pub id: u64,
    /// The undo-history entry this event created or acted on, if any.
    pub change: Option<u64>,
    /// Who asked, what, where.
    pub origin: Origin,
    /// Bytes whose value changed.
    pub bytes_changed: u64,
    /// Bytes written (may exceed `bytes_changed` when some already had the value).
    pub bytes_written: u64,
    /// Wall-clock time.
    pub time: SystemTime,
    /// Whether the change can be undone through the journal.
    pub undoable: bool,
}

type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

pub(crate) enum Sink {
    Channel(Sender<Event>),
    Callback(Callback),
}

/// Ordered event delivery outside the engine lock.
#[derive(Default)]
pub(crate) struct Bus {
    queue: Mutex<VecDeque<Event>>,
    sinks: Mutex<Vec<Sink>>,
    delivering: Mutex<()>,
}

impl Bus {
    /// Queues an event; call while holding the engine lock so queue order == id order.
    pub(crate) fn queue(&self, e: Event) {
        self.queue.lock().push_back(e);
    }

    pub(crate) fn add(&self, sink: Sink) {
        self.sinks.lock().push(sink);
    }

    /// Delivers queued events in order. If another thread (or this one, re-entrantly from a
    /// callback) is delivering, it will deliver ours too.
    pub(crate) fn flush(&self) {
        loop {
            let Some(_guard) = self.delivering.try_lock() else {
                return;
            };
            loop {
                let next = self.queue.lock().pop_front();
                let Some(e) = next else { break };
                let mut sinks = self.sinks.lock();
                sinks.retain(|s| match s {
                    Sink::Channel(tx) => tx.send(e.clone()).is_ok(),
                    Sink::Callback(_) => true,
                });
                // Callbacks run without the sinks lock so they may subscribe or write.
                let callbacks: Vec<Callback> = sinks
                    .iter()
                    .filter_map(|s| match s {
                        Sink::Callback(f) => Some(Arc::clone(f)),
                        Sink::Channel(_) => None,
                    })
                    .collect();
                drop(sinks);
                for f in callbacks {
                    f(&e);
                }
            }
            drop(_guard);
            // An event queued between our last pop and the unlock would be stranded: re-check.
            if self.queue.lock().is_empty() {
                return;
            }
        }
    }
}
