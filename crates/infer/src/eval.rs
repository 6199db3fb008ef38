//! The behaviour diff: perplexity of a model over a text, and — of two models over the same
//! text — the KL divergence of their next-token distributions (mean, p99) and how often their
//! most likely token agrees. What `llama-perplexity --kl-divergence` measures, computed here by
//! running both models side by side in chunks (no logits file).
//!
//! The text is tokenized once (both models must share the vocabulary) and cut into windows of
//! `window` tokens; each window is evaluated from an empty context; within it every position
//! but the last predicts the next token, so a window of `n` tokens scores `n - 1`. The models
//! run in sub-batches of `batch` tokens, alternately, so only `batch` rows of logits per model
//! are ever held.

use std::time::Instant;

use crate::error::{InferError, Result};
use crate::instance::Instance;
use crate::llama::Token;
use crate::sample::{argmax, log_sum_exp};

/// How to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalOptions {
    /// Tokens per window (each from an empty context).
    pub window: usize,
    /// Tokens per decode.
    pub batch: usize,
    /// Most tokens of the text to use (0: all).
    pub max_tokens: usize,
    /// How many positions of worst disagreement to report.
    pub worst: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            window: 512,
            batch: 64,
            max_tokens: 0,
            worst: 20,
        }
    }
}

/// One scored position where two models disagree.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenDiff {
    /// Position in the text's tokens (of the token predicted).
    pub position: usize,
    /// The text before it (a few tokens of context).
    pub context: String,
    /// The actual next token's text.
    pub actual: String,
    /// KL(A ‖ B) at this position.
    pub kld: f64,
    /// Probability A gave the actual token.
    pub p_a: f64,
    /// Probability B gave it.
    pub p_b: f64,
    /// A's most likely token.
    pub top_a: String,
    /// B's most likely token.
    pub top_b: String,
}

/// One scored position of a two-model evaluation, for a per-token view of the text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenScore {
    /// Position in the text's tokens (of the token predicted).
    pub position: usize,
    /// The token's text.
    pub text: String,
    /// KL(A ‖ B) at this position.
    pub kld: f64,
    /// Whether both models' most likely token is the same here.
    pub agree: bool,
}

/// What an evaluation measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Positions scored.
    pub tokens: usize,
    /// Window length used.
    pub window: usize,
    /// Perplexity of A: exp(mean negative log-likelihood of the actual next tokens).
    pub ppl: f64,
    /// Perplexity of B.
    pub ppl_b: Option<f64>,
    /// Mean negative log-likelihood of A, nats per token (ln of `ppl`, finite where `ppl`
    /// overflows to infinity).
    pub nll: f64,
    /// B's.
    pub nll_b: Option<f64>,
    /// Mean KL(A ‖ B) over the positions (nats).
    pub kld_mean: Option<f64>,
    /// 99th percentile of KL(A ‖ B).
    pub kld_p99: Option<f64>,
    /// Largest KL(A ‖ B).
    pub kld_max: Option<f64>,
    /// Fraction of positions where both models' most likely token is the same.
    pub top1_agreement: Option<f64>,
    /// The positions of largest KL, largest first.
    pub worst: Vec<TokenDiff>,
    /// With B: every scored position in text order (KL and top-1 agreement), for a per-token
    /// view of where the models part.
    pub per_token: Vec<TokenScore>,
    /// Seconds spent.
    pub seconds: f64,
    /// Tokens evaluated per second (per model).
    pub tokens_per_second: f64,
}

/// Numbers of one position from two logits rows: (nll_a, nll_b, kl, top1 agree, p_a, p_b).
fn compare_rows(a: &[f32], b: &[f32], actual: usize) -> (f64, f64, f64, bool, f64, f64) {
    let la = log_sum_exp(a);
    let lb = log_sum_exp(b);
    let mut kl = 0.0f64;
    for (&x, &y) in a.iter().zip(b) {
        let lpa = x as f64 - la;
        let lpb = y as f64 - lb;
        let pa = lpa.exp();
        if pa > 0.0 {
            kl += pa * (lpa - lpb);
        }
    }
    let nll_a = la - a[actual] as f64;
    let nll_b = lb - b[actual] as f64;
    let agree = argmax(a) == argmax(b);
    (
        nll_a,
        nll_b,
        kl.max(0.0),
        agree,
        (-nll_a).exp(),
        (-nll_b).exp(),
    )
}

/// The `q` quantile (0..1) of unsorted values (nearest rank).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Evaluates `text` on `a`, and with `b` compares the two. `progress(done, total)` counts
/// tokens and may return `false` to cancel.
pub fn evaluate(
    a: &mut Instance,
    mut b: Option<&mut Instance>,
    text: &str,
    options: EvalOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<EvalReport> {
    let t0 = Instant::now();
    let mut tokens = a.tokenize_prompt(text)?;
    if let Some(b) = b.as_deref_mut() {
        if b.model().n_vocab() != a.model().n_vocab() {
            return Err(InferError::Invalid {
                what: "models",
                message: format!(
                    "their vocabularies differ ({} vs {} tokens): KL needs the same tokens",
                    a.model().n_vocab(),
                    b.model().n_vocab()
                ),
            });
        }
        let tb = b.tokenize_prompt(text)?;
        if tb != tokens {
            return Err(InferError::Invalid {
                what: "models",
                message: "they tokenize the text differently: KL needs the same tokenizer".into(),
            });
        }
    }
    if options.max_tokens > 0 && tokens.len() > options.max_tokens {
        tokens.truncate(options.max_tokens);
    }
    if tokens.len() < 2 {
        return Err(InferError::Invalid {
            what: "text",
            message: format!(
                "{} token(s): at least 2 are needed to score one",
                tokens.len()
            ),
        });
    }
    let n_ctx = a.n_ctx().min(b.as_deref().map_or(u32::MAX, |b| b.n_ctx())) as usize;
    let window = options.window.clamp(2, n_ctx);
    let batch = options.batch.clamp(1, window);
    let total = tokens.len();
    let mut nll_a = 0.0f64;
    let mut nll_b = 0.0f64;
    let mut kls: Vec<f64> = Vec::new();
    let mut agree = 0usize;
    let mut scored = 0usize;
    let mut worst: Vec<(f64, usize, f64, f64, usize, usize)> = Vec::new();
    let mut per_token: Vec<(usize, f64, bool)> = Vec::new();
    let mut start = 0usize;
    while start + 1 < total {
        let end = (start + window).min(total);
        let win = &tokens[start..end];
        let mut off = 0usize;
        while off < win.len() {
            let sub = &win[off..(off + batch).min(win.len())];
            let mut rows_a: Vec<Vec<f32>> = Vec::with_capacity(sub.len());
            a.all_logits(sub, off as u32, &mut |_, r| rows_a.push(r.to_vec()))?;
            let mut rows_b: Vec<Vec<f32>> = Vec::new();
            if let Some(b) = b.as_deref_mut() {
                b.all_logits(sub, off as u32, &mut |_, r| rows_b.push(r.to_vec()))?;
            }
            for (i, ra) in rows_a.iter().enumerate() {
                let p = off + i; // position in the window
                if p + 1 >= win.len() {
                    break;
                }
                let actual = win[p + 1] as usize;
                if actual >= ra.len() {
                    continue;
                }
                scored += 1;
                match rows_b.get(i) {
                    Some(rb) => {
                        let (na, nb, kl, ag, pa, pb) = compare_rows(ra, rb, actual);
                        nll_a += na;
                        nll_b += nb;
                        kls.push(kl);
                        agree += ag as usize;
                        per_token.push((start + p + 1, kl, ag));
                        worst.push((
                            kl,
                            start + p + 1,
                            pa,
                            pb,
                            argmax(ra).unwrap_or(0),
                            argmax(rb).unwrap_or(0),
                        ));
                        if worst.len() > options.worst * 4 + 64 {
                            worst.sort_by(|x, y| {
                                y.0.partial_cmp(&x.0).unwrap_or(std::cmp::Ordering::Equal)
                            });
                            worst.truncate(options.worst);
                        }
                    }
                    None => nll_a += log_sum_exp(ra) - ra[actual] as f64,
                }
            }
            off += sub.len();
            if !progress(start + off, total) {
                return Err(InferError::Canceled);
            }
        }
        start = end;
    }
    if scored == 0 {
        return Err(InferError::Invalid {
            what: "text",
            message: "no position could be scored".into(),
        });
    }
    worst.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap_or(std::cmp::Ordering::Equal));
    worst.truncate(options.worst);
    let text_of = |inst: &Instance, t: Token| inst.token_text(t);
    let worst = worst
        .into_iter()
        .map(|(kl, pos, pa, pb, ta, tb)| {
            let ctx_from = pos.saturating_sub(8);
            let context: String = tokens[ctx_from..pos]
                .iter()
                .map(|&t| text_of(a, t))
                .collect();
            TokenDiff {
                position: pos,
                context,
                actual: text_of(a, tokens[pos]),
                kld: kl,
                p_a: pa,
                p_b: pb,
                top_a: text_of(a, ta as Token),
                top_b: text_of(a, tb as Token),
            }
        })
        .collect();
    let per_token = per_token
        .into_iter()
        .map(|(position, kld, agree)| TokenScore {
            position,
            text: text_of(a, tokens[position]),
            kld,
            agree,
        })
        .collect();
    let seconds = t0.elapsed().as_secs_f64();
    let has_b = b.is_some();
    Ok(EvalReport {
        tokens: scored,
        window,
        ppl: (nll_a / scored as f64).exp(),
        nll: nll_a / scored as f64,
        nll_b: has_b.then(|| nll_b / scored as f64),
        ppl_b: has_b.then(|| (nll_b / scored as f64).exp()),
        kld_mean: has_b.then(|| kls.iter().sum::<f64>() / kls.len().max(1) as f64),
        kld_p99: has_b.then(|| quantile(&kls, 0.99)),
        kld_max: has_b.then(|| kls.iter().copied().fold(0.0, f64::max)),
        top1_agreement: has_b.then(|| agree as f64 / scored as f64),
        worst,
        per_token,
        seconds,
        tokens_per_second: total as f64 / seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_rows_have_zero_kl_and_agree() {
        let a = [0.5f32, -1.0, 2.0, 0.0];
        let (na, nb, kl, ag, pa, pb) = compare_rows(&a, &a, 2);
        assert_eq!(kl, 0.0);
        assert!(ag);
        assert_eq!(na, nb);
        assert_eq!(pa, pb);
    }

    #[test]
    fn kl_matches_a_hand_computation() {
        // p = softmax([0, ln 3]) = [1/4, 3/4]; q = [1/2, 1/2].
        let a = [0.0f32, 3f32.ln()];
        let b = [0.0f32, 0.0];
        let (_, _, kl, ag, _, _) = compare_rows(&a, &b, 0);
        let want = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        assert!((kl - want).abs() < 1e-6, "{kl} vs {want}");
        assert!(!ag, "argmax 1 vs 0 (first on ties)");
    }

    #[test]
    fn quantile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
