//! `hotpatch tensor MODEL NAME [--start N] [--count N] [--json | --raw-f32 FILE]`: a tensor's
//! values, dequantized to f32.
//!
//! Values are the flat elements in ggml order (ne[0] fastest). Only the blocks covering
//! `[start, start + count)` are decoded, a bounded number at a time, so any slice of any
//! tensor prints in constant memory. JSON: `{"name", "type", "dims", "start", "values": [...]}`
//! with non-finite values as `"NaN"`, `"Infinity"`, `"-Infinity"`. `--raw-f32 FILE` writes the
//! values as little-endian f32: the tensor is decoded in pieces of [`RAW_PIECE_ELEMENTS`] on
//! every core, each piece written at its place in the file with one positional write (the
//! whole path runs at the speed of ggml's C dequantizer plus one `write`, or faster).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{bail, Context};
use hotpatch_quant::{dequantize, GgmlType};
use serde_json::json;

use crate::output::{open_model, write_all_at, write_f32_json};

/// Arguments of `hotpatch tensor`.
#[derive(clap::Args)]
pub struct Args {
    /// The model (any shard of a split model).
    model: PathBuf,
    /// The tensor name, e.g. `blk.0.attn_q.weight`.
    name: String,
    /// First element (flat index, ggml order).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Number of elements (default: to the end of the tensor).
    #[arg(long)]
    count: Option<u64>,
    /// Print JSON.
    #[arg(long, conflicts_with = "raw_f32")]
    json: bool,
    /// Write the values as little-endian f32 to FILE instead of printing them.
    #[arg(long, value_name = "FILE")]
    raw_f32: Option<PathBuf>,
}

/// Elements decoded per step (a whole number of blocks of every type).
const STEP_BLOCKS_ELEMS: u64 = 1 << 16;

/// Elements per piece of `--raw-f32` output (1 MiB of f32; a whole number of blocks of every
/// type): large enough that one `write` per piece costs nothing, small enough to stay in cache.
pub const RAW_PIECE_ELEMENTS: u64 = 1 << 18;

/// Runs the subcommand.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let m = open_model(&a.model)?;
    let t = m
        .tensor(&a.name)
        .with_context(|| format!("{}: no tensor named '{}'", a.model.display(), a.name))?;
    let ty = t
        .ggml_type()
        .with_context(|| a.model.display().to_string())?;
    if a.start > t.n_elements {
        bail!(
            "--start {} is past the end of tensor '{}' ({} elements)",
            a.start,
            t.name,
            t.n_elements
        );
    }
    let count = a.count.unwrap_or(t.n_elements - a.start);
    let end = a
        .start
        .checked_add(count)
        .filter(|&e| e <= t.n_elements)
        .with_context(|| {
            format!(
                "--start {} --count {count} runs past the end of tensor '{}' ({} elements)",
                a.start, t.name, t.n_elements
            )
        })?;
    if !ty.can_dequantize() {
        bail!("tensor '{}' is {ty}: no dequantizer for {ty} yet", t.name);
    }
    let data = m.tensor_data(t)?;
    if let Some(path) = &a.raw_f32 {
        write_raw_f32(path, &t.name, ty, data, a.start, end)?;
        return Ok(ExitCode::SUCCESS);
    }
    let bs = ty.block_size() as u64;
    let ts = ty.type_size() as u64;

    // Decodes the blocks covering [pos, min(end, pos + step)) into `vals`; returns the range
    // of `vals` holding the requested elements and the next position.
    let mut vals = Vec::new();
    let decode = |pos: u64, vals: &mut Vec<f32>| -> anyhow::Result<(std::ops::Range<usize>, u64)> {
        let block0 = pos / bs;
        let block1 = end.min(pos + STEP_BLOCKS_ELEMS).div_ceil(bs);
        let bytes = data
            .get((block0 * ts) as usize..(block1 * ts) as usize)
            .with_context(|| {
                format!(
                    "tensor '{}': blocks {block0}..{block1} are outside its data",
                    t.name
                )
            })?;
        vals.resize(((block1 - block0) * bs) as usize, 0f32);
        dequantize(ty, bytes, vals).with_context(|| format!("tensor '{}'", t.name))?;
        let from = (pos - block0 * bs) as usize;
        let to = (end.min(block1 * bs) - block0 * bs) as usize;
        Ok((from..to, block1 * bs))
    };
    // The first chunk is decoded before anything is written, so an unsupported type leaves
    // neither partial output nor an empty --raw-f32 file.
    let mut pos = a.start;
    let first = if pos < end {
        Some(decode(pos, &mut vals)?)
    } else {
        None
    };

    let mut sink: Box<dyn Sink> = match a.json {
        true => Box::new(JsonSink {
            w: BufWriter::new(io::stdout().lock()),
            first: true,
            buf: ryu::Buffer::new(),
        }),
        false => Box::new(TextSink {
            w: BufWriter::new(io::stdout().lock()),
            n: 0,
            buf: ryu::Buffer::new(),
        }),
    };
    if a.json {
        let head = json!({"name": t.name, "type": ty.name(), "dims": t.dims, "start": a.start});
        let head = head.to_string();
        // Open the object, keep it open for the streamed values.
        sink.raw(&head.as_bytes()[..head.len() - 1])?;
        sink.raw(b",\"values\":[")?;
    } else {
        let dims: Vec<String> = t.dims.iter().map(u64::to_string).collect();
        sink.raw(
            format!(
                "{} {ty} [{}] elements {}..{}\n",
                crate::output::safe(&t.name),
                dims.join(", "),
                a.start,
                end
            )
            .as_bytes(),
        )?;
    }
    if let Some((range, next)) = first {
        sink.values(&vals[range])?;
        pos = next;
    }
    while pos < end {
        let (range, next) = decode(pos, &mut vals)?;
        sink.values(&vals[range])?;
        pos = next;
    }
    if a.json {
        sink.raw(b"]}\n")?;
    }
    sink.finish()?;
    Ok(ExitCode::SUCCESS)
}

trait Sink {
    fn raw(&mut self, b: &[u8]) -> anyhow::Result<()>;
    fn values(&mut self, v: &[f32]) -> anyhow::Result<()>;
    fn finish(&mut self) -> anyhow::Result<()>;
}

struct JsonSink<W: Write> {
    w: W,
    first: bool,
    buf: ryu::Buffer,
}

impl<W: Write> Sink for JsonSink<W> {
    fn raw(&mut self, b: &[u8]) -> anyhow::Result<()> {
        Ok(self.w.write_all(b)?)
    }
    fn values(&mut self, v: &[f32]) -> anyhow::Result<()> {
        for &x in v {
            if !self.first {
                self.w.write_all(b",")?;
            }
            self.first = false;
            write_f32_json(&mut self.w, x, &mut self.buf)?;
        }
        Ok(())
    }
    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(self.w.flush()?)
    }
}

struct TextSink<W: Write> {
    w: W,
    n: u64,
    buf: ryu::Buffer,
}

impl<W: Write> Sink for TextSink<W> {
    fn raw(&mut self, b: &[u8]) -> anyhow::Result<()> {
        Ok(self.w.write_all(b)?)
    }
    fn values(&mut self, v: &[f32]) -> anyhow::Result<()> {
        for &x in v {
            self.w
                .write_all(if self.n.is_multiple_of(8) { b"" } else { b" " })?;
            if x.is_finite() {
                self.w.write_all(self.buf.format_finite(x).as_bytes())?;
            } else {
                write!(self.w, "{x}")?;
            }
            self.n += 1;
            if self.n.is_multiple_of(8) {
                self.w.write_all(b"\n")?;
            }
        }
        Ok(())
    }
    fn finish(&mut self) -> anyhow::Result<()> {
        if !self.n.is_multiple_of(8) {
            self.w.write_all(b"\n")?;
        }
        Ok(self.w.flush()?)
    }
}

/// Writes elements `start..end` of a tensor of type `ty` (its data `data`) to `path` as
/// little-endian f32: pieces of [`RAW_PIECE_ELEMENTS`] decoded on every core, each written
/// with one positional write. Nothing is created when the range is not inside the data; a
/// failed write leaves `path` as it was (`hotpatch_atomic::write_with`).
fn write_raw_f32(
    path: &Path,
    name: &str,
    ty: GgmlType,
    data: &[u8],
    start: u64,
    end: u64,
) -> anyhow::Result<()> {
    let (bs, ts) = (ty.block_size() as u64, ty.type_size() as u64);
    let (block0, block1) = (start / bs, end.div_ceil(bs));
    let bytes = data
        .get((block0 * ts) as usize..(block1 * ts) as usize)
        .with_context(|| {
            format!("tensor '{name}': blocks {block0}..{block1} are outside its data")
        })?;
    // Through the shared atomic writer: the pieces go to a temporary file beside `path`, which
    // replaces it only once complete (a failed write leaves `path` as it was).
    hotpatch_atomic::write_with(path, |file, _tmp| -> anyhow::Result<()> {
        // Pieces are counted from the first block, so each one is whole blocks.
        let first = block0 * bs;
        let pieces = (block1 * bs - first).div_ceil(RAW_PIECE_ELEMENTS);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(pieces.max(1) as usize);
        let next = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let worker = || -> anyhow::Result<()> {
            let mut vals = vec![0f32; RAW_PIECE_ELEMENTS.min(block1 * bs - first) as usize];
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= pieces || failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let p0 = first + k * RAW_PIECE_ELEMENTS;
                let p1 = (p0 + RAW_PIECE_ELEMENTS).min(block1 * bs);
                let src =
                    &bytes[((p0 - first) / bs * ts) as usize..((p1 - first) / bs * ts) as usize];
                let out = &mut vals[..(p1 - p0) as usize];
                if let Err(e) = dequantize(ty, src, out) {
                    failed.store(true, Ordering::Relaxed);
                    return Err(anyhow::Error::new(e).context(format!("tensor '{name}'")));
                }
                let (from, to) = (start.max(p0), end.min(p1));
                let out = &mut out[(from - p0) as usize..(to - p0) as usize];
                if cfg!(target_endian = "big") {
                    for x in out.iter_mut() {
                        *x = f32::from_bits(x.to_bits().swap_bytes());
                    }
                }
                if let Err(e) = write_all_at(file, bytemuck::cast_slice(out), (from - start) * 4) {
                    failed.store(true, Ordering::Relaxed);
                    return Err(
                        anyhow::Error::new(e).context(format!("{}: write failed", path.display()))
                    );
                }
            }
        };
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(worker)).collect();
            let mine = worker();
            helpers
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .fold(mine, |acc, r| acc.and(r))
        })
    })
}
