//! The `hotpatch` command-line tool.
//!
//! A thin dispatcher: each subcommand is one variant of [`Command`] and one module with an
//! `Args` struct and a `run` function. Exit codes, for scripts:
//! - `0` success;
//! - `1` the command ran but refused or found a mismatch (e.g. a verification that failed);
//! - `2` bad input (unreadable model, unknown tensor, bad arguments): exactly one line on
//!   stderr naming the problem and where.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ablate;
mod audit;
mod convert;
mod diff;
mod edit;
mod eval;
mod inspect;
mod layers;
mod lora;
mod merge;
mod output;
mod progress;
mod run;
mod scan;
mod serve;
mod surgery;
mod tensor;
mod tensors;

/// Model surgery on GGUF files.
#[derive(Parser)]
#[command(name = "hotpatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Shows a model's header: version, alignment, metadata and tensor index.
    Inspect(inspect::Args),
    /// Prints a tensor's values (dequantized to f32).
    Tensor(tensor::Args),
    /// Compares two models tensor by tensor, most different first.
    Diff(diff::Args),
    /// Sets weights by tensor name and element index (quant-aware), optionally recording them.
    Edit(edit::EditArgs),
    /// Applies a configuration to a model after a preview (exit 1 when it does not fit).
    Apply(edit::ApplyArgs),
    /// Scans every tensor for NaN, Inf, subnormal and outlier weights.
    Scan(scan::ScanArgs),
    /// Searches a model's bytes for a hex pattern (`??` wildcards).
    Search(scan::SearchArgs),
    /// Audits a model: chat template, structure (what llama.cpp refuses), provenance (--base).
    Audit(audit::Args),
    /// Runs the request/response proxy in front of an LLM server (or of the built-in engine
    /// with `--model`), one line per request.
    Serve(serve::Args),
    /// Re-encodes tensors into other types (`--type GLOB=TYPE`), writing a new file.
    Convert(convert::Args),
    /// Drops, keeps, repeats or inserts layers (metadata kept consistent), writing a new file.
    Layers(layers::Args),
    /// Merges models (linear, SLERP, task arithmetic, TIES, DARE), writing a new file.
    Merge(merge::Args),
    /// Applies a GGUF LoRA adapter into the weights (types kept), writing a new file.
    Lora(lora::Args),
    /// Removes a direction from the residual-stream writers (abliteration), writing a new file.
    Ablate(ablate::Args),
    /// Removes, renames or adds tensors (from a GGUF, .npy or .safetensors), writing a new file.
    Tensors(tensors::Args),
    /// Generates text with the embedded llama.cpp (greedy), from the file as it is on disk.
    Run(run::Args),
    /// Perplexity of a model over a text; with a second model, KL divergence and top-1 agreement.
    Eval(eval::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.render().to_string();
            // clap's first paragraph (the problem), on one line; the usage that follows is
            // what `--help` is for.
            let first: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty())
                .collect();
            let first = first.join(" ");
            eprintln!(
                "hotpatch: {} (see hotpatch --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Tensor(a) => tensor::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Edit(a) => edit::run_edit(a),
        Command::Apply(a) => edit::run_apply(a),
        Command::Scan(a) => scan::run_scan(a),
        Command::Search(a) => scan::run_search(a),
        Command::Serve(a) => serve::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Layers(a) => layers::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Lora(a) => lora::run(a),
        Command::Ablate(a) => ablate::run(a),
        Command::Tensors(a) => tensors::run(a),
        Command::Run(a) => run::run(a),
        Command::Eval(a) => eval::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("hotpatch: {}", output::safe(&msg));
            ExitCode::from(2)
        }
    }
}
