//! Choosing tokens from logits and turning tokens into text: pure functions, no llama.cpp.

use crate::llama::Token;

/// One candidate for the next token.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Candidate {
    /// Token id.
    pub token: Token,
    /// Its text (lossy UTF-8 of its bytes; special tokens rendered).
    pub text: String,
    /// Probability (softmax of the logits).
    pub prob: f32,
    /// Raw logit.
    pub logit: f32,
}

/// The index of the largest logit, the first one on ties (what llama.cpp's greedy sampler
/// picks). `None` for an empty row or a row holding NaN.
pub fn argmax(logits: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() {
            return None;
        }
        match best {
            Some((_, b)) if l <= b => {}
            _ => best = Some((i, l)),
        }
    }
    best.map(|(i, _)| i)
}

/// log-sum-exp of a row, in f64.
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if !max.is_finite() {
        return max;
    }
    let s: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    max + s.ln()
}

/// The `k` most probable tokens of a row, most probable first (ties: lower id first), with
/// probabilities; `text` is left empty for the caller to fill.
pub fn top_k(logits: &[f32], k: usize) -> Vec<Candidate> {
    let lse = log_sum_exp(logits);
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    let cmp = |a: &usize, b: &usize| {
        logits[*b]
            .partial_cmp(&logits[*a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(b))
    };
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_by(cmp);
    idx.into_iter()
        .map(|i| Candidate {
            token: i as Token,
            text: String::new(),
            prob: ((logits[i] as f64) - lse).exp() as f32,
            logit: logits[i],
        })
        .collect()
}

/// How to pick tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 (or less): greedy. Otherwise softmax(logits / temperature).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `top_p` (1: all).
    pub top_p: f32,
    /// Seed of the random choice.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// A token picker: greedy, or seeded random sampling (splitmix64, so runs repeat exactly).
#[derive(Debug, Clone)]
pub struct Sampler {
    s: Sampling,
    state: u64,
}

impl Sampler {
    /// A sampler.
    pub fn new(s: Sampling) -> Sampler {
        Sampler {
            s,
            state: s.seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next_f64(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks the next token from a logits row (`None`: the row is empty or NaN).
    pub fn pick(&mut self, logits: &[f32]) -> Option<usize> {
        if self.s.temperature <= 0.0 || !self.s.temperature.is_finite() {
            return argmax(logits);
        }
        if logits.iter().any(|l| l.is_nan()) || logits.is_empty() {
            return None;
        }
        let k = if self.s.top_k == 0 {
            logits.len().min(1024)
        } else {
            self.s.top_k.min(logits.len())
        };
        let t = self.s.temperature as f64;
        let cands = top_k(logits, k);
        let max = cands[0].logit as f64;
        let mut w: Vec<f64> = cands
            .iter()
            .map(|c| ((c.logit as f64 - max) / t).exp())
            .collect();
        let total: f64 = w.iter().sum();
        if self.s.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = w.len();
            for (i, x) in w.iter().enumerate() {
                acc += x / total;
                if acc >= self.s.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            w.truncate(keep.max(1));
        }
        let total: f64 = w.iter().sum();
        let mut r = self.next_f64() * total;
        for (i, x) in w.iter().enumerate() {
            if r < *x {
                return Some(cands[i].token as usize);
            }
            r -= x;
        }
        Some(cands[w.len() - 1].token as usize)
    }
}

/// Turns a stream of token bytes into text, never splitting a UTF-8 character: each push
/// returns the text completed so far (invalid bytes become U+FFFD).
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds bytes; returns the newly completed text.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    // SAFETY-free: `good` bytes are valid UTF-8 by from_utf8's contract.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..good]));
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..good + n);
                        }
                        None => {
                            // An incomplete character at the end: keep it for the next push.
                            self.pending.drain(..good);
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// What is left at the end (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

/// Finds the first stop string in `text`; returns where the text must be cut.
pub fn find_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum_and_refuses_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[0.0, f32::NAN]), None);
        assert_eq!(argmax(&[f32::NEG_INFINITY, -1.0]), Some(1));
    }

    #[test]
    fn top_k_orders_and_normalizes() {
        let l = [0.0f32, 2.0, 1.0, 2.0];
        let t = top_k(&l, 3);
        assert_eq!(t.iter().map(|c| c.token).collect::<Vec<_>>(), vec![1, 3, 2]);
        let all: f32 = top_k(&l, 4).iter().map(|c| c.prob).sum();
        assert!(
            (all - 1.0).abs() < 1e-6,
            "probabilities of every token sum to 1, got {all}"
        );
        assert!(
            (t[0].prob - t[1].prob).abs() < 1e-7,
            "equal logits, equal probabilities"
        );
    }

    #[test]
    fn sampling_is_seeded_and_greedy_at_zero_temperature() {
        let l: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let mut g = Sampler::new(Sampling::default());
        assert_eq!(g.pick(&l), argmax(&l));
        let s = Sampling {
            temperature: 1.0,
            top_k: 20,
            top_p: 0.95,
            seed: 42,
        };
        let a: Vec<_> = {
            let mut x = Sampler::new(s);
            (0..20).map(|_| x.pick(&l)).collect()
        };
        let b: Vec<_> = {
            let mut x = Sampler::new(s);
            (0..20).map(|_| x.pick(&l)).collect()
        };
        assert_eq!(a, b, "the same seed gives the same choices");
        assert!(
            a.iter().collect::<std::collections::HashSet<_>>().len() > 1,
            "temperature 1 varies"
        );
    }

    #[test]
    fn utf8_stream_never_splits_a_character() {
        let mut s = Utf8Stream::default();
        let e = "é".as_bytes();
        assert_eq!(s.push(&e[..1]), "");
        assert_eq!(s.push(&e[1..]), "é");
        assert_eq!(s.push(b"a\xffb"), "a\u{FFFD}b");
        assert_eq!(s.push(&[0xE2, 0x82]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
    }

    #[test]
    fn stop_strings_cut_at_the_first() {
        let stops = vec!["\n\n".to_string(), "END".to_string(), String::new()];
        assert_eq!(find_stop("abc END x\n\n", &stops), Some(4));
        assert_eq!(find_stop("abc", &stops), None);
    }
}
