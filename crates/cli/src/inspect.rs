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

use hotpatch_gguf::MetaValue;
use serde_json::{json, Value};

use crate::output::{open_model, value_json, value_short};

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
        let metadata: Vec<Value> = idx
            .metadata
            .iter()
            .map(|e| {
                let mut o = json!({"key": e.key, "type": e.value.value_type().name(), "value": value_json(&e.value)});
                if let MetaValue::Array(arr) = &e.value {
                    o["element_type"] = json!(arr.element_type().name());
                }
                o
            })
            .collect();
        let tensors: Vec<Value> = m
            .tensors
            .iter()
            .map(|t| {
                let mut o = json!({"name": t.name, "type": t.ty.to_string(), "dims": t.dims, "offset": t.offset, "nbytes": t.nbytes});
                if m.is_split() {
                    o["shard"] = json!(t.shard);
                }
                o
            })
            .collect();
        let mut doc = json!({
            "version": idx.version,
            "alignment": idx.alignment,
            "data_offset": idx.data_offset,
            "metadata": metadata,
            "tensors": tensors,
        });
        doc["llama_cpp"] = json!({
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
        if m.is_split() {
            doc["shards"] = json!(m
                .shards
                .iter()
                .map(|s| s.path().display().to_string())
                .collect::<Vec<_>>());
        }
        serde_json::to_writer(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", a.model.display())?;
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
                let line = crate::audit::terminal_safe(&i.one_line());
                writeln!(out, "  {kind:<10} {:<26} {line}", i.code)?;
            }
        }
        writeln!(out, "\nmetadata:")?;
        for e in &idx.metadata {
            writeln!(
                out,
                "  {:<40} {:<8} {}",
                e.key,
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
                t.name,
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
