//! `hotpatch audit FILE [--json | --sarif] [--base BASE]`: can this file be trusted?
//!
//! Structure (what llama.cpp refuses or mishandles, what this reader refuses), the chat
//! template (injection gadgets, content triggers, hidden characters, network addresses, and
//! the prompt it renders on fixed conversations) and, with `--base`, whether every tensor
//! re-derives byte for byte from the claimed F16/BF16/F32 base.
//!
//! Exit codes: `0` clean (info findings only, or none), `1` at least one warning or error,
//! `2` the file cannot be read or is not GGUF. `--json` prints
//! `{"file", "llama_cpp", "clean", "findings": [{"severity", "code", "message", "where",
//! "offset"?, "line"?, "column"?}], "renders": [{"template", "conversation", "prompt" |
//! "error"}]}`; `--sarif` prints a SARIF 2.1.0 log.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use hotpatch_audit::{provenance, sarif, Options, Report, Severity};

use crate::progress::Progress;

/// Arguments of `hotpatch audit`.
#[derive(clap::Args)]
pub struct Args {
    /// The model (any file of a split model).
    model: PathBuf,
    /// Print JSON instead of a human report.
    #[arg(long, conflicts_with = "sarif")]
    json: bool,
    /// Print a SARIF 2.1.0 log (for CI pipelines).
    #[arg(long)]
    sarif: bool,
    /// The F16/BF16/F32 model MODEL claims to be quantized from: re-derive every tensor.
    #[arg(long, value_name = "BASE")]
    base: Option<PathBuf>,
    /// Do not render the chat template on the fixed conversations.
    #[arg(long)]
    no_render: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let opts = Options {
        render: !a.no_render,
        now_unix: None,
    };
    let mut report = match hotpatch_audit::audit_path(&a.model, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hotpatch: {}", crate::output::safe(&e.0));
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(base) = &a.base {
        let mut progress = Progress::new("re-derive");
        let r = provenance::check_paths(&a.model, base, &mut |done, total| {
            progress.update(done, total);
            true
        });
        match r {
            Ok(p) => {
                progress.finish(&p.summary());
                report.findings.extend(p.findings);
                report.sort();
            }
            Err(e) => {
                eprintln!("hotpatch: {}", crate::output::safe(&e.to_string()));
                return Ok(ExitCode::from(2));
            }
        }
    }
    let out = io::stdout().lock();
    let mut out = BufWriter::new(out);
    if a.sarif {
        serde_json::to_writer_pretty(&mut out, &sarif::to_sarif(std::slice::from_ref(&report)))?;
        writeln!(out)?;
    } else if a.json {
        serde_json::to_writer(&mut out, &report.to_json())?;
        writeln!(out)?;
    } else {
        human(&mut out, &report)?;
    }
    out.flush()?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn human(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let (e, w, i) = (
        r.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        r.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count(),
        r.findings
            .iter()
            .filter(|f| f.severity == Severity::Info)
            .count(),
    );
    writeln!(out, "{}", crate::output::safe(&r.file))?;
    writeln!(
        out,
        "{}: {e} error(s), {w} warning(s), {i} note(s) (rules of {})",
        if r.is_clean() { "clean" } else { "NOT CLEAN" },
        hotpatch_audit::LLAMA_CPP_BUILD
    )?;
    for f in &r.findings {
        writeln!(
            out,
            "\n{:<7} {}  {}\n        {}",
            f.severity.name(),
            f.code,
            crate::output::safe(&f.location.display()),
            crate::output::safe(&f.message)
        )?;
    }
    for rend in &r.renders {
        writeln!(
            out,
            "\n--- {} rendered on the '{}' conversation ---",
            crate::output::safe(&rend.template),
            crate::output::safe(&rend.conversation)
        )?;
        match (&rend.prompt, &rend.error) {
            (Some(p), _) => {
                for line in p.split('\n') {
                    writeln!(out, "| {}", crate::output::safe(line))?;
                }
            }
            (None, Some(err)) => writeln!(out, "(not rendered: {})", crate::output::safe(err))?,
            _ => {}
        }
    }
    Ok(())
}
