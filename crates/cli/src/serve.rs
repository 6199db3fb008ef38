//! `hotpatch serve (--upstream URL | --model MODEL) [--config CONFIG] [--port N] [--bind ADDR]`:
//! run the request/response proxy in front of an LLM server until Ctrl-C. With `--model`, the
//! upstream is the built-in one: the embedded llama.cpp serving MODEL (OpenAI-compatible
//! `/v1/completions` and `/v1/chat/completions`, streaming too) on a loopback port of its own,
//! so the proxy's rules apply in front of it; it computes from the mapped file, so an in-place
//! or live edit of MODEL shows in the next answer.
//!
//! The rules, cache and limits come from the `server` section of CONFIG (a configuration
//! file); the flags override its bind address, port and upstream. The first stdout line is
//! `listening on http://ADDR (upstream URL)` (with the real port when `--port 0`); then one
//! line per request:
//! `#ID METHOD PATH STATUS LATENCY rules=ID,ID|- cache=hit|miss|- [upstream=STATUS] [error: …]`.

use std::io::Write;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hotpatch_core::config::Configuration;
use hotpatch_proxy::{EventSink, ProxyEvent, ServerSettings, Supervisor};

/// Arguments of `hotpatch serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Base URL of the LLM server (llama.cpp server, Ollama, vLLM…), e.g. http://127.0.0.1:8080.
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    upstream: Option<String>,
    /// Serve this model with the embedded engine (the built-in upstream) instead.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Threads of the embedded engine (with --model; default: every core).
    #[arg(long, default_value_t = 0)]
    threads: u32,
    /// Context length of the embedded engine (with --model).
    #[arg(long, default_value_t = 4096)]
    ctx: u32,
    /// Configuration file whose `server` section gives the rules, cache and limits.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Port to listen on (0: any free port, printed at start). Default: the configuration's, else 8090.
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on. Default: the configuration's, else 127.0.0.1.
    #[arg(long)]
    bind: Option<IpAddr>,
}

/// The proxy settings: the configuration's `server` section with the flags applied
/// (`upstream`: the `--upstream` URL; `None` on the built-in upstream, which replaces it).
fn settings(a: &Args, upstream: Option<&str>) -> anyhow::Result<ServerSettings> {
    let mut settings = match &a.config {
        None => ServerSettings::default(),
        Some(path) => {
            let text = hotpatch_core::config::file::read_text(path)?;
            // `from_json` validates the `server` section (the same check `apply` makes).
            let config =
                Configuration::from_json(&text).with_context(|| format!("{}", path.display()))?;
            config.server.unwrap_or_default()
        }
    };
    if let Some(u) = upstream {
        settings.upstream = Some(u.to_owned());
    }
    if let Some(p) = a.port {
        settings.port = p;
    }
    if let Some(b) = a.bind {
        settings.bind = b;
    }
    settings.validate()?;
    Ok(settings)
}

/// One line describing a request.
pub fn event_line(e: &ProxyEvent) -> String {
    let rules = if e.rules_applied.is_empty() {
        "-".to_owned()
    } else {
        e.rules_applied.join(",")
    };
    let cache = if e.endpoint.is_none() {
        "-"
    } else if e.cache_hit {
        "hit"
    } else {
        "miss"
    };
    let mut line = format!(
        "#{} {} {} {} {:.1}ms rules={} cache={}",
        e.id,
        e.method,
        e.path,
        e.status,
        e.duration_us as f64 / 1000.0,
        rules,
        cache
    );
    if let Some(u) = e.upstream_status.filter(|u| *u != e.status) {
        line.push_str(&format!(" upstream={u}"));
    }
    if e.blocked {
        line.push_str(" blocked");
    }
    if let Some(err) = &e.error {
        line.push_str(&format!(" error: {}", err.replace('\n', " ")));
    }
    line
}

/// The pump's sink: one line per request on stdout; the first write error stops it (kept
/// here for `run` to report).
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<parking_lot::Mutex<Option<std::io::Error>>>);

impl EventSink for Lines {
    fn event(&mut self, e: &ProxyEvent) -> ControlFlow<()> {
        let mut out = std::io::stdout().lock();
        let written =
            writeln!(out, "{}", crate::output::safe(&event_line(e))).and_then(|()| out.flush());
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                *self.0.lock() = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    fn lagged(&mut self, skipped: u64) -> ControlFlow<()> {
        eprintln!("hotpatch: {skipped} request lines skipped (output too slow)");
        ControlFlow::Continue(())
    }
}

/// Runs the subcommand.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    // Validate the configuration before loading a model.
    settings(
        &a,
        Some(a.upstream.as_deref().unwrap_or("http://127.0.0.1:1")),
    )?;
    let engine = match &a.model {
        Some(m) => Some(crate::run::load(m, a.threads, a.ctx, false)?),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async move {
        let backend = engine.map(|inst| {
            let b: std::sync::Arc<dyn hotpatch_infer::Backend> =
                std::sync::Arc::new(parking_lot::Mutex::new(inst));
            b
        });
        let builtin = backend.is_some();
        let upstream = a.upstream.clone().unwrap_or_default();
        let flag = (!builtin).then_some(upstream.as_str());
        let out = Lines::default();
        let mut sup = Supervisor::start(settings(&a, flag)?, backend, out.clone()).await?;
        let label = if builtin {
            format!(
                "engine {} at {}",
                a.model
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                sup.upstream()
            )
        } else {
            upstream
        };
        {
            let mut o = std::io::stdout().lock();
            writeln!(
                o,
                "listening on http://{} (upstream {label})",
                sup.handle().local_addr()
            )?;
            o.flush()?;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = sup.pump_finished() => {}
        }
        sup.stop(None).await;
        let failed = out.0.lock().take();
        match failed {
            Some(e) => Err(e.into()),
            None => anyhow::Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
