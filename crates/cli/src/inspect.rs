//! `hotpatch inspect MODEL [--json]`: the header of a model.
//!
//! JSON shape: `{"version", "alignment", "data_offset", "metadata": [{"key", "type", "value"}],
//! "tensors": [{"name", "type", "dims", "offset", "nbytes"}]}`. `type` of a metadata entry is
//! gguf-py's value type name (`"UINT32"`, `"ARRAY"`, …); arrays also carry `"element_type"`.
//! Tensor `type` is the ggml name (`"Q4_K"`), `dims` in ggml order (ne[0] first), `offset`
//! absolute in the file. Split models list every shard's tensors, each with its `"shard"`
//! (0-based) and the top level gets `"shards"` (the file paths).
//!
//! What llama.cpp will refuse or mishandle in the file (the rules of
//! [`hotpatch_gguf::llama`], shared with `hotpatch audit`, the studio and the save path) is
//! said too: in JSON as `"llama_cpp": {"build", "loads", "issues": [{"code", "refuses",
//! "message", "where", "offset"?}]}`, for people as a warning block before the metadata.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use hotpatch_gguf::{GgufModel, MetaValue};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::json;

use crate::output::{open_model, safe, safe_path, value_short, MetaJson};

/// Arguments of `hotpatch inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The model (any shard of a split model).
    model: PathBuf,
    /// Print JSON instead of a human summary.
    #[arg(long)]
    json: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let m = open_model(&a.model)?;
    let idx = m.index();
    let issues = hotpatch_gguf::llama::check_model(&m);
    let out = io::stdout().lock();
    let mut out = BufWriter::new(out);
    if a.json {
        // Streamed: serde writes straight into the buffered stdout from the parsed index (no
        // JSON tree is built for the metadata and tensors; a 262,144-token vocabulary is written
        // as it is read). The few llama.cpp findings are a small tree.
        let llama_cpp = json!({
            "build": hotpatch_gguf::llama::LLAMA_CPP_BUILD,
            "loads": !issues.iter().any(|i| i.refuses),
            "issues": issues.iter().map(|i| {
                let mut o = json!({"code": i.code, "refuses": i.refuses, "message": i.message, "where": i.subject});
                if let Some(off) = i.offset {
                    o["offset"] = json!(off);
                }
                if i.shard > 0 {
                    o["shard"] = json!(i.shard);
                }
                o
            }).collect::<Vec<_>>(),
        });
        serde_json::to_writer(&mut out, &InspectJson(&m, &llama_cpp))?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", safe_path(&a.model))?;
        writeln!(
            out,
            "GGUF v{}, alignment {}, data at {:#x}, {} metadata entries, {} tensors{}",
            idx.version,
            idx.alignment,
            idx.data_offset,
            idx.metadata.len(),
            m.tensors.len(),
            if m.is_split() {
                format!(" in {} shards", m.shards.len())
            } else {
                String::new()
            }
        )?;
        if !issues.is_empty() {
            let verdict = if issues.iter().any(|i| i.refuses) {
                "will refuse this file"
            } else {
                "will load this file but mishandle it"
            };
            let build = hotpatch_gguf::llama::LLAMA_CPP_BUILD;
            writeln!(out, "\nwarning: {build} {verdict}:")?;
            for i in &issues {
                let kind = if i.refuses { "refuses" } else { "mishandles" };
                let line = crate::output::safe(&i.one_line());
                writeln!(out, "  {kind:<10} {:<26} {line}", i.code)?;
            }
        }
        writeln!(out, "\nmetadata:")?;
        for e in &idx.metadata {
            writeln!(
                out,
                "  {:<40} {:<8} {}",
                safe(&e.key),
                e.value.value_type().name(),
                value_short(&e.value)
            )?;
        }
        writeln!(out, "\ntensors:")?;
        for t in &m.tensors {
            let dims: Vec<String> = t.dims.iter().map(u64::to_string).collect();
            let shard = if m.is_split() {
                format!("  shard {}", t.shard)
            } else {
                String::new()
            };
            writeln!(
                out,
                "  {:<40} {:<8} [{}]  offset {:#x}  {} bytes{shard}",
                safe(&t.name),
                t.ty.to_string(),
                dims.join(", "),
                t.offset,
                t.nbytes
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The `--json` document of a model (and its llama.cpp findings). Keys in alphabetical order,
/// as they always were.
struct InspectJson<'a>(&'a GgufModel, &'a serde_json::Value);

impl Serialize for InspectJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let idx = m.index();
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("alignment", &idx.alignment)?;
        o.serialize_entry("data_offset", &idx.data_offset)?;
        o.serialize_entry("llama_cpp", self.1)?;
        o.serialize_entry("metadata", &Metadata(m))?;
        if m.is_split() {
            let paths: Vec<String> = m
                .shards
                .iter()
                .map(|s| s.path().display().to_string())
                .collect();
            o.serialize_entry("shards", &paths)?;
        }
        o.serialize_entry("tensors", &Tensors(m))?;
        o.serialize_entry("version", &idx.version)?;
        o.end()
    }
}

struct Metadata<'a>(&'a GgufModel);

impl Serialize for Metadata<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = &self.0.index().metadata;
        let mut seq = s.serialize_seq(Some(entries.len()))?;
        for e in entries {
            seq.serialize_element(&Entry(&e.key, &e.value))?;
        }
        seq.end()
    }
}

struct Entry<'a>(&'a str, &'a MetaValue);

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut o = s.serialize_map(None)?;
        if let MetaValue::Array(arr) = self.1 {
            o.serialize_entry("element_type", arr.element_type().name())?;
        }
        o.serialize_entry("key", self.0)?;
        o.serialize_entry("type", self.1.value_type().name())?;
        o.serialize_entry("value", &MetaJson(self.1))?;
        o.end()
    }
}

struct Tensors<'a>(&'a GgufModel);

impl Serialize for Tensors<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut seq = s.serialize_seq(Some(m.tensors.len()))?;
        for t in &m.tensors {
            seq.serialize_element(&TensorJson(t, m.is_split()))?;
        }
        seq.end()
    }
}

struct TensorJson<'a>(&'a hotpatch_gguf::TensorInfo, bool);

impl Serialize for TensorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("dims", &t.dims)?;
        o.serialize_entry("name", &t.name)?;
        o.serialize_entry("nbytes", &t.nbytes)?;
        o.serialize_entry("offset", &t.offset)?;
        if self.1 {
            o.serialize_entry("shard", &t.shard)?;
        }
        o.serialize_entry("type", &t.ty.to_string())?;
        o.end()
    }
}
