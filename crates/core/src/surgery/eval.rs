//! Values of output tensors, computed row by row, and the readers that stream them (quantized
//! to the output type) into the GGUF writer.
//!
//! A tensor that keeps its source's bytes is copied ([`Source::Copy`]); any other is an
//! [`Expr`]: a tree whose leaves are dequantized source tensors (or arrays read from a file)
//! and whose nodes are merges, LoRA deltas and ablations. Rows are the ggml rows (`ne[0]`
//! contiguous values); an expression fills any run of rows, so memory stays bounded by a
//! chunk (about a million values) whatever the model size. Nodes that need a statistic of the
//! whole tensor first (SLERP's angle, TIES' magnitude threshold, an ablation along the output
//! dimension) compute it in [`Expr::prepare`], streaming their inputs the same way.
//!
//! Chunks are computed and quantized on every core (`std::thread::scope`); the result does not
//! depend on the number of threads (each row is computed the same way wherever it runs).

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hotpatch_gguf::{GgmlType, TensorInfo};
use parking_lot::Mutex;

use super::ops::MergeMethod;
use super::{InputModel, SurgeryError};

/// Values computed per chunk (rows are never split).
const CHUNK_VALUES: usize = 1 << 20;

/// Where an output tensor's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The bytes of tensor `tensor` of input `model`, as they are.
    Copy { model: usize, tensor: usize },
    /// Computed values, quantized into the output type.
    Values(Expr),
}

/// A tensor's values.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// Tensor `tensor` of input `model`, dequantized.
    Tensor { model: usize, tensor: usize },
    /// Values read from a file (`.npy`, `.safetensors`), in ggml order.
    Array(Arc<Vec<f32>>),
    /// A merge.
    Merge(Box<MergeExpr>),
    /// A LoRA delta added to the base.
    Lora(Box<LoraExpr>),
    /// A direction projected out.
    Ablate(Box<AblateExpr>),
}

/// What the evaluation needs: the input models, and a cancel flag.
pub(crate) struct Ctx<'a> {
    pub models: &'a [InputModel],
    pub cancel: &'a AtomicBool,
}

impl Ctx<'_> {
    pub fn info(&self, model: usize, tensor: usize) -> &TensorInfo {
        &self.models[model].model.tensors[tensor]
    }

    fn data(&self, model: usize, tensor: usize) -> Result<&[u8], SurgeryError> {
        let m = &self.models[model];
        m.model
            .tensor_data(&m.model.tensors[tensor])
            .map_err(|e| SurgeryError::gguf(&m.path, e))
    }

    fn check(&self) -> Result<(), SurgeryError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(SurgeryError::Canceled)
        } else {
            Ok(())
        }
    }
}

/// A tensor's shape as rows: `ne0` values per row, `rows` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub ne0: usize,
    pub rows: u64,
}

impl Shape {
    pub fn of(dims: &[u64]) -> Result<Shape, String> {
        let ne0 = dims.first().copied().unwrap_or(1);
        let n: u64 = dims.iter().product();
        let ne0 = usize::try_from(ne0).map_err(|_| "row too long".to_string())?;
        if ne0 == 0 {
            return Ok(Shape { ne0: 1, rows: 0 });
        }
        Ok(Shape {
            ne0,
            rows: n / ne0 as u64,
        })
    }

    pub fn len(&self) -> u64 {
        self.rows * self.ne0 as u64
    }

    /// Rows per chunk.
    fn chunk_rows(&self) -> usize {
        (CHUNK_VALUES / self.ne0).max(1)
    }
}

/// Streams all rows of `e` through `f(first_row, values)`, a chunk at a time.
fn for_chunks(
    e: &Expr,
    ctx: &Ctx<'_>,
    shape: Shape,
    mut f: impl FnMut(u64, &[f32]),
) -> Result<(), SurgeryError> {
    let step = shape.chunk_rows() as u64;
    let mut buf = Vec::new();
    let mut r = 0;
    while r < shape.rows {
        ctx.check()?;
        let n = step.min(shape.rows - r) as usize;
        buf.resize(n * shape.ne0, 0.0);
        e.rows(ctx, shape, r, n, &mut buf)?;
        f(r, &buf);
        r += n as u64;
    }
    Ok(())
}

/// Streams the rows of `a` and `b` side by side through `f(a_rows, b_rows)`.
fn for_pairs(
    a: &Expr,
    b: &Expr,
    ctx: &Ctx<'_>,
    shape: Shape,
    mut f: impl FnMut(&[f32], &[f32]),
) -> Result<(), SurgeryError> {
    let mut bb = Vec::new();
    let mut failure = None;
    for_chunks(a, ctx, shape, |r, av| {
        if failure.is_some() {
            return;
        }
        bb.resize(av.len(), 0.0);
        match b.rows(ctx, shape, r, av.len() / shape.ne0, &mut bb) {
            Ok(()) => f(av, &bb),
            Err(e) => failure = Some(e),
        }
    })?;
    failure.map_or(Ok(()), Err)
}

impl Expr {
    /// Computes whatever the expression needs over the whole tensor before rows can be made.
    pub fn prepare(&mut self, ctx: &Ctx<'_>, shape: Shape) -> Result<(), SurgeryError> {
        match self {
            Expr::Tensor { .. } | Expr::Array(_) => Ok(()),
            Expr::Merge(m) => m.prepare(ctx, shape),
            Expr::Lora(l) => l.prepare(ctx),
            Expr::Ablate(a) => a.prepare(ctx, shape),
        }
    }

    /// Fills `out` (`n` rows) with rows `r0..r0+n`.
    pub fn rows(
        &self,
        ctx: &Ctx<'_>,
        shape: Shape,
        r0: u64,
        n: usize,
        out: &mut [f32],
    ) -> Result<(), SurgeryError> {
        debug_assert_eq!(out.len(), n * shape.ne0);
        match self {
            Expr::Tensor { model, tensor } => {
                let t = ctx.info(*model, *tensor);
                let ty = t
                    .ggml_type()
                    .map_err(|e| SurgeryError::gguf(&ctx.models[*model].path, e))?;
                let rb = ty
                    .row_bytes(shape.ne0 as u64)
                    .ok_or_else(|| SurgeryError::invalid(&t.name, "row is not whole blocks"))?;
                let data = ctx.data(*model, *tensor)?;
                let start = r0 as usize * rb;
                let bytes = data.get(start..start + n * rb).ok_or_else(|| {
                    SurgeryError::invalid(&t.name, "rows outside the tensor data")
                })?;
                hotpatch_quant::dequantize(ty, bytes, out)
                    .map_err(|e| SurgeryError::invalid(&t.name, e.to_string()))
            }
            Expr::Array(v) => {
                let start = r0 as usize * shape.ne0;
                out.copy_from_slice(&v[start..start + out.len()]);
                Ok(())
            }
            Expr::Merge(m) => m.rows(ctx, shape, r0, n, out),
            Expr::Lora(l) => l.rows(ctx, shape, r0, n, out),
            Expr::Ablate(a) => a.rows(ctx, shape, r0, n, out),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Merges

/// A merge of one tensor. Parameters are already evaluated for this tensor.
#[derive(Debug, Clone)]
pub(crate) struct MergeExpr {
    pub method: MergeMethod,
    pub base: Expr,
    pub others: Vec<Expr>,
    /// Weight of each other model.
    pub weights: Vec<f32>,
    /// The base's weight (linear).
    pub base_weight: f32,
    /// Density of each other model (ties, dare).
    pub densities: Vec<f32>,
    pub normalize: bool,
    pub lambda: f32,
    /// slerp's t.
    pub t: f32,
    /// DARE's random stream of each other model.
    pub streams: Vec<u64>,
    /// TIES: the magnitude each task vector's kept elements reach (prepared).
    thresholds: Vec<f32>,
    /// SLERP: the two factors (prepared).
    slerp: (f32, f32),
}

impl MergeExpr {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: MergeMethod,
        base: Expr,
        others: Vec<Expr>,
        weights: Vec<f32>,
        base_weight: f32,
        densities: Vec<f32>,
        normalize: bool,
        lambda: f32,
        t: f32,
        streams: Vec<u64>,
    ) -> MergeExpr {
        MergeExpr {
            method,
            base,
            others,
            weights,
            base_weight,
            densities,
            normalize,
            lambda,
            t,
            streams,
            thresholds: Vec::new(),
            slerp: (1.0, 0.0),
        }
    }

    fn prepare(&mut self, ctx: &Ctx<'_>, shape: Shape) -> Result<(), SurgeryError> {
        self.base.prepare(ctx, shape)?;
        for o in &mut self.others {
            o.prepare(ctx, shape)?;
        }
        match self.method {
            MergeMethod::Slerp => {
                let (mut n0, mut n1, mut d) = (0f64, 0f64, 0f64);
                for_pairs(&self.base, &self.others[0], ctx, shape, |b, o| {
                    for (x, y) in b.iter().zip(o) {
                        let (x, y) = (f64::from(*x), f64::from(*y));
                        n0 += x * x;
                        n1 += y * y;
                        d += x * y;
                    }
                })?;
                self.slerp = slerp_factors(self.t, n0, n1, d);
                Ok(())
            }
            MergeMethod::Ties => {
                self.thresholds = Vec::with_capacity(self.others.len());
                for i in 0..self.others.len() {
                    let th = self.magnitude_threshold(ctx, shape, i)?;
                    self.thresholds.push(th);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The smallest magnitude among the `density · n` largest |mᵢ − base| (every element at
    /// or above it is kept). Two streaming passes over a radix histogram of the magnitudes'
    /// bits (high 16, then low 16 inside the chosen bucket): exact, O(1) memory.
    fn magnitude_threshold(
        &self,
        ctx: &Ctx<'_>,
        shape: Shape,
        i: usize,
    ) -> Result<f32, SurgeryError> {
        let n = shape.len();
        let density = self.densities[i];
        if density >= 1.0 {
            return Ok(0.0);
        }
        let k = (f64::from(density.max(0.0)) * n as f64).floor() as u64;
        if k == 0 {
            return Ok(f32::INFINITY);
        }
        let mut hi = vec![0u64; 1 << 16];
        self.deltas(ctx, shape, i, |d| {
            for x in d {
                hi[(mag_bits(*x) >> 16) as usize] += 1;
            }
        })?;
        let (bucket, above) = pick_bucket(&hi, k);
        let need = k - above;
        let mut lo = vec![0u64; 1 << 16];
        self.deltas(ctx, shape, i, |d| {
            for x in d {
                let b = mag_bits(*x);
                if b >> 16 == bucket as u32 {
                    lo[(b & 0xffff) as usize] += 1;
                }
            }
        })?;
        let (low, _) = pick_bucket(&lo, need);
        Ok(f32::from_bits(((bucket as u32) << 16) | low as u32))
    }

    /// Streams the task vector mᵢ − base.
    fn deltas(
        &self,
        ctx: &Ctx<'_>,
        shape: Shape,
        i: usize,
        mut f: impl FnMut(&[f32]),
    ) -> Result<(), SurgeryError> {
        for_pairs(&self.base, &self.others[i], ctx, shape, |b, o| {
            let d: Vec<f32> = o.iter().zip(b).map(|(o, b)| o - b).collect();
            f(&d);
        })
    }

    fn rows(
        &self,
        ctx: &Ctx<'_>,
        shape: Shape,
        r0: u64,
        n: usize,
        out: &mut [f32],
    ) -> Result<(), SurgeryError> {
        self.base.rows(ctx, shape, r0, n, out)?;
        let mut xs = Vec::with_capacity(self.others.len());
        for o in &self.others {
            let mut v = vec![0f32; out.len()];
            o.rows(ctx, shape, r0, n, &mut v)?;
            xs.push(v);
        }
        let first = r0 * shape.ne0 as u64;
        match self.method {
            MergeMethod::Linear => {
                let mut wsum = self.base_weight;
                for w in &self.weights {
                    wsum += w;
                }
                for (j, b) in out.iter_mut().enumerate() {
                    let mut acc = self.base_weight * *b;
                    for (x, w) in xs.iter().zip(&self.weights) {
                        acc += w * x[j];
                    }
                    *b = if self.normalize { acc / wsum } else { acc };
                }
            }
            MergeMethod::Slerp => {
                let (s0, s1) = self.slerp;
                for (b, x) in out.iter_mut().zip(&xs[0]) {
                    *b = s0 * *b + s1 * x;
                }
            }
            MergeMethod::Task | MergeMethod::Dare => {
                let dare = self.method == MergeMethod::Dare;
                let mut wsum = 0f32;
                for w in &self.weights {
                    wsum += w;
                }
                if wsum.abs() < 1e-8 {
                    wsum = 1.0;
                }
                for (j, b) in out.iter_mut().enumerate() {
                    let mut mixed = 0f32;
                    for (i, (x, w)) in xs.iter().zip(&self.weights).enumerate() {
                        let mut d = x[j] - *b;
                        if dare {
                            d = self.dare(i, first + j as u64, d);
                        }
                        mixed += w * d;
                    }
                    if self.normalize {
                        mixed /= wsum;
                    }
                    *b += mixed * self.lambda;
                }
            }
            MergeMethod::Ties | MergeMethod::DareTies => {
                let ties = self.method == MergeMethod::Ties;
                let mut wd = vec![0f32; xs.len()];
                for (j, b) in out.iter_mut().enumerate() {
                    let mut sum = 0f32;
                    for (i, (x, w)) in xs.iter().zip(&self.weights).enumerate() {
                        let mut d = x[j] - *b;
                        d = if ties {
                            if d.abs() >= self.thresholds[i] {
                                d
                            } else {
                                0.0
                            }
                        } else {
                            self.dare(i, first + j as u64, d)
                        };
                        wd[i] = w * d;
                        sum += wd[i];
                    }
                    let majority = if sum >= 0.0 { 1.0 } else { -1.0 };
                    let (mut mixed, mut div) = (0f32, 0f32);
                    for (i, v) in wd.iter().enumerate() {
                        if sign(*v) == majority {
                            mixed += v;
                            div += self.weights[i];
                        }
                    }
                    if div == 0.0 {
                        div = 1.0;
                    }
                    if self.normalize {
                        mixed /= div;
                    }
                    *b += mixed * self.lambda;
                }
            }
        }
        Ok(())
    }

    /// DARE's drop of element `index` of task vector `i`: kept with probability `density`
    /// (and rescaled by 1/density), else 0.
    fn dare(&self, i: usize, index: u64, d: f32) -> f32 {
        let density = self.densities[i];
        if density >= 1.0 {
            return d;
        }
        if dare_keep(self.streams[i], index, density) {
            d / density
        } else {
            0.0
        }
    }
}

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Bits of |x| (NaN counts as 0: never kept for its magnitude).
fn mag_bits(x: f32) -> u32 {
    if x.is_nan() {
        0
    } else {
        x.abs().to_bits()
    }
}

/// The bucket holding the `k`-th largest count (1-based) and how many are above it.
fn pick_bucket(hist: &[u64], k: u64) -> (usize, u64) {
    let mut above = 0u64;
    for b in (0..hist.len()).rev() {
        if above + hist[b] >= k {
            return (b, above);
        }
        above += hist[b];
    }
    (0, above)
}

/// Whether DARE keeps element `index` of the stream `stream`: `u < density` where
/// `u = (splitmix64(stream + (index+1)·φ) >> 11) · 2⁻⁵³` (wrapping u64 arithmetic).
pub fn dare_keep(stream: u64, index: u64, density: f32) -> bool {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let z =
        crate::tensor::splitmix64(stream.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN)));
    let u = (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    u < f64::from(density)
}

/// The random stream of model `model` (1-based among the merged ones) for tensor `name`:
/// `seed ^ fnv1a64(name) ^ model·φ`.
pub fn dare_stream(seed: u64, name: &str, model: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    seed ^ h ^ model.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// SLERP's two factors from the squared norms and the dot product of the two tensors, as
/// mergekit computes them: each vector normalized when its norm exceeds 1e-8; nearly parallel
/// vectors (|cos| > 0.9995) fall back to linear interpolation.
pub fn slerp_factors(t: f32, n0: f64, n1: f64, dot: f64) -> (f32, f32) {
    let eps = 1e-8;
    let (a, b) = (n0.sqrt(), n1.sqrt());
    let a = if a > eps { a } else { 1.0 };
    let b = if b > eps { b } else { 1.0 };
    let cos = dot / (a * b);
    let t = f64::from(t);
    if cos.abs() > 0.9995 {
        return ((1.0 - t) as f32, t as f32);
    }
    let theta0 = cos.acos();
    let s = theta0.sin();
    let theta_t = theta0 * t;
    (
        ((theta0 - theta_t).sin() / s) as f32,
        (theta_t.sin() / s) as f32,
    )
}

// ---------------------------------------------------------------------------------------------
// LoRA

/// W + scale · B·A, with A and B from an adapter.
#[derive(Debug, Clone)]
pub(crate) struct LoraExpr {
    pub base: Expr,
    /// (input, tensor) of `lora_a` and `lora_b`.
    pub a: (usize, usize),
    pub b: (usize, usize),
    pub rank: usize,
    /// alpha/rank · user scale.
    pub scale: f32,
    /// The token-embedding layout (A: ne [rank, n_vocab], B: ne [rank, n_embd]), as llama.cpp
    /// reads it for `token_embd`.
    pub embd: bool,
    /// Dequantized A and B (prepared).
    av: Arc<Vec<f32>>,
    bv: Arc<Vec<f32>>,
}

impl LoraExpr {
    pub fn new(
        base: Expr,
        a: (usize, usize),
        b: (usize, usize),
        rank: usize,
        scale: f32,
        embd: bool,
    ) -> LoraExpr {
        LoraExpr {
            base,
            a,
            b,
            rank,
            scale,
            embd,
            av: Arc::default(),
            bv: Arc::default(),
        }
    }

    fn prepare(&mut self, ctx: &Ctx<'_>) -> Result<(), SurgeryError> {
        let load = |(m, t): (usize, usize)| -> Result<Vec<f32>, SurgeryError> {
            let info = ctx.info(m, t);
            let shape = Shape::of(&info.dims).map_err(|e| SurgeryError::invalid(&info.name, e))?;
            let mut v = vec![0f32; shape.len() as usize];
            Expr::Tensor {
                model: m,
                tensor: t,
            }
            .rows(ctx, shape, 0, shape.rows as usize, &mut v)?;
            Ok(v)
        };
        self.av = Arc::new(load(self.a)?);
        self.bv = Arc::new(load(self.b)?);
        Ok(())
    }

    fn rows(
        &self,
        ctx: &Ctx<'_>,
        shape: Shape,
        r0: u64,
        n: usize,
        out: &mut [f32],
    ) -> Result<(), SurgeryError> {
        self.base.rows(ctx, shape, r0, n, out)?;
        let (r, ne0) = (self.rank, shape.ne0);
        for (k, row) in out.chunks_exact_mut(ne0).enumerate() {
            let o = r0 as usize + k;
            if self.embd {
                // row = token o; delta[e] = scale Σ_j A[o][j] B[e][j]
                let a = &self.av[o * r..(o + 1) * r];
                for (e, x) in row.iter_mut().enumerate() {
                    let b = &self.bv[e * r..(e + 1) * r];
                    let mut acc = 0f32;
                    for j in 0..r {
                        acc += a[j] * b[j];
                    }
                    *x += self.scale * acc;
                }
            } else {
                // row = output o; delta[i] = Σ_j (scale B[o][j]) A[j][i]
                let b = &self.bv[o * r..(o + 1) * r];
                for (j, bj) in b.iter().enumerate() {
                    let f = self.scale * bj;
                    let a = &self.av[j * ne0..(j + 1) * ne0];
                    for (x, aj) in row.iter_mut().zip(a) {
                        *x += f * aj;
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Ablation

/// Which dimension of a tensor lives in the residual stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    /// Each row (`ne[0]` values) is a residual vector (token embeddings, 1-D biases).
    Rows,
    /// The output dimension `ne[1]` is the residual stream (attention output, FFN down):
    /// every column is a residual vector.
    Columns,
}

/// W ← W − s·r (rᵀ W) along `axis`.
#[derive(Debug, Clone)]
pub(crate) struct AblateExpr {
    pub base: Expr,
    /// Unit direction.
    pub r: Arc<Vec<f32>>,
    pub scale: f32,
    pub axis: Axis,
    /// `ne[1]`, the residual width for `Columns` (a 3-D tensor, e.g. the experts' FFN down,
    /// is `ne[2]` such matrices one after the other).
    pub ne1: usize,
    /// rᵀ W per column of each matrix (prepared, `Columns`).
    c: Vec<f32>,
}

impl AblateExpr {
    pub fn new(base: Expr, r: Arc<Vec<f32>>, scale: f32, axis: Axis, ne1: usize) -> AblateExpr {
        AblateExpr {
            base,
            r,
            scale,
            axis,
            ne1,
            c: Vec::new(),
        }
    }

    fn prepare(&mut self, ctx: &Ctx<'_>, shape: Shape) -> Result<(), SurgeryError> {
        self.base.prepare(ctx, shape)?;
        if self.axis == Axis::Columns {
            let ne1 = self.ne1.max(1);
            let groups = (shape.rows as usize).div_ceil(ne1);
            let mut c = vec![0f64; shape.ne0 * groups];
            let r = &self.r;
            for_chunks(&self.base, ctx, shape, |r0, v| {
                for (k, row) in v.chunks_exact(shape.ne0).enumerate() {
                    let at = r0 as usize + k;
                    let ro = f64::from(r[at % ne1]);
                    let g = at / ne1;
                    let cg = &mut c[g * shape.ne0..(g + 1) * shape.ne0];
                    for (ci, x) in cg.iter_mut().zip(row) {
                        *ci += ro * f64::from(*x);
                    }
                }
            })?;
            self.c = c.into_iter().map(|x| x as f32).collect();
        }
        Ok(())
    }

    fn rows(
        &self,
        ctx: &Ctx<'_>,
        shape: Shape,
        r0: u64,
        n: usize,
        out: &mut [f32],
    ) -> Result<(), SurgeryError> {
        self.base.rows(ctx, shape, r0, n, out)?;
        match self.axis {
            Axis::Rows => {
                for row in out.chunks_exact_mut(shape.ne0) {
                    let dot: f64 = row
                        .iter()
                        .zip(self.r.iter())
                        .map(|(x, r)| f64::from(*x) * f64::from(*r))
                        .sum();
                    let f = (f64::from(self.scale) * dot) as f32;
                    for (x, r) in row.iter_mut().zip(self.r.iter()) {
                        *x -= f * r;
                    }
                }
            }
            Axis::Columns => {
                let ne1 = self.ne1.max(1);
                for (k, row) in out.chunks_exact_mut(shape.ne0).enumerate() {
                    let at = r0 as usize + k;
                    let f = self.scale * self.r[at % ne1];
                    let g = at / ne1;
                    let c = &self.c[g * shape.ne0..(g + 1) * shape.ne0];
                    for (x, c) in row.iter_mut().zip(c) {
                        *x -= f * c;
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming into the writer

/// Shared by the readers of one write: the cancel flag and the first error.
pub(crate) struct Shared {
    pub cancel: AtomicBool,
    pub failure: Mutex<Option<SurgeryError>>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            cancel: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    fn fail(&self, e: SurgeryError) -> io::Error {
        let msg = e.to_string();
        let mut f = self.failure.lock();
        if f.is_none() {
            *f = Some(e);
        }
        io::Error::other(msg)
    }
}

/// A tensor's output bytes as a reader.
pub(crate) struct TensorReader<'a> {
    pub models: &'a [InputModel],
    pub shared: &'a Shared,
    pub name: String,
    pub ty: GgmlType,
    pub shape: Shape,
    pub kind: ReaderKind<'a>,
    next_row: u64,
    buf: Vec<u8>,
    pos: usize,
    prepared: bool,
    threads: usize,
}

pub(crate) enum ReaderKind<'a> {
    Copy(&'a [u8]),
    Values(Expr),
}

impl<'a> TensorReader<'a> {
    pub fn new(
        models: &'a [InputModel],
        shared: &'a Shared,
        name: String,
        ty: GgmlType,
        shape: Shape,
        kind: ReaderKind<'a>,
    ) -> TensorReader<'a> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        TensorReader {
            models,
            shared,
            name,
            ty,
            shape,
            kind,
            next_row: 0,
            buf: Vec::new(),
            pos: 0,
            prepared: false,
            threads,
        }
    }

    fn ctx(&self) -> Ctx<'a> {
        Ctx {
            models: self.models,
            cancel: &self.shared.cancel,
        }
    }

    /// Computes and quantizes the next chunk of rows into `buf`.
    fn fill(&mut self, expr: &mut Expr) -> Result<(), SurgeryError> {
        let ctx = self.ctx();
        if !self.prepared {
            expr.prepare(&ctx, self.shape)?;
            self.prepared = true;
        }
        ctx.check()?;
        let shape = self.shape;
        let n = (shape.chunk_rows() as u64).min(shape.rows - self.next_row) as usize;
        let rb = self
            .ty
            .row_bytes(shape.ne0 as u64)
            .ok_or_else(|| SurgeryError::invalid(&self.name, "row is not whole blocks"))?;
        self.buf.resize(n * rb, 0);
        self.pos = 0;
        let r0 = self.next_row;
        let parts = self.threads.min(n).max(1);
        let per = n.div_ceil(parts);
        let ty = self.ty;
        let expr: &Expr = expr;
        let name = &self.name;
        let results: Vec<Result<(), SurgeryError>> = std::thread::scope(|s| {
            let mut handles = Vec::new();
            let mut rest: &mut [u8] = &mut self.buf;
            let mut row = 0usize;
            while row < n {
                let k = per.min(n - row);
                let (mine, tail) = rest.split_at_mut(k * rb);
                rest = tail;
                let first = r0 + row as u64;
                let ctx = &ctx;
                let mut job = move || -> Result<(), SurgeryError> {
                    let mut vals = vec![0f32; k * shape.ne0];
                    expr.rows(ctx, shape, first, k, &mut vals)?;
                    hotpatch_quant::quantize(ty, &vals, mine)
                        .map_err(|e| SurgeryError::invalid(name, e.to_string()))?;
                    // No type overflows below 6e4 (f16's largest is 65504 and every block scale
                    // or minimum is at most the block's largest magnitude); above, check that
                    // no finite value was stored as NaN/Inf.
                    let amax = vals
                        .iter()
                        .filter(|v| v.is_finite())
                        .fold(0f32, |m, v| m.max(v.abs()));
                    if amax > 6.0e4 {
                        let first_value = first * shape.ne0 as u64;
                        crate::tensor::check_finite(
                            ty,
                            mine,
                            first_value,
                            &vals,
                            &vec![false; vals.len()],
                        )
                        .map_err(|e| {
                            SurgeryError::invalid(name, format!("{e}; choose a wider type for it"))
                        })?;
                    }
                    Ok(())
                };
                if row + k >= n {
                    // The last part runs on this thread.
                    handles.push(Err(job()));
                } else {
                    handles.push(Ok(s.spawn(job)));
                }
                row += k;
            }
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().unwrap_or_else(|_| {
                        Err(SurgeryError::invalid(name, "a worker thread panicked"))
                    }),
                    Err(r) => r,
                })
                .collect()
        });
        for r in results {
            r?;
        }
        self.next_row += n as u64;
        Ok(())
    }
}

impl Read for TensorReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.shared.cancel.load(Ordering::Relaxed) {
            return Err(self.shared.fail(SurgeryError::Canceled));
        }
        match &mut self.kind {
            ReaderKind::Copy(bytes) => {
                let n = out.len().min(bytes.len());
                out[..n].copy_from_slice(&bytes[..n]);
                *bytes = &bytes[n..];
                Ok(n)
            }
            ReaderKind::Values(_) => {
                if self.pos == self.buf.len() {
                    if self.next_row >= self.shape.rows {
                        return Ok(0);
                    }
                    let ReaderKind::Values(mut expr) =
                        std::mem::replace(&mut self.kind, ReaderKind::Copy(&[]))
                    else {
                        unreachable!("matched Values above")
                    };
                    let r = self.fill(&mut expr);
                    self.kind = ReaderKind::Values(expr);
                    if let Err(e) = r {
                        return Err(self.shared.fail(e));
                    }
                }
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_pick_the_kth_largest() {
        let mut h = vec![0u64; 8];
        h[7] = 2;
        h[5] = 3;
        h[1] = 4;
        assert_eq!(pick_bucket(&h, 1), (7, 0));
        assert_eq!(pick_bucket(&h, 2), (7, 0));
        assert_eq!(pick_bucket(&h, 3), (5, 2));
        assert_eq!(pick_bucket(&h, 6), (1, 5));
    }

    #[test]
    fn slerp_ends_are_the_inputs() {
        // Orthogonal vectors: t = 0 gives the base, t = 1 the other.
        assert_eq!(slerp_factors(0.0, 1.0, 1.0, 0.0), (1.0, 0.0));
        let (s0, s1) = slerp_factors(1.0, 1.0, 1.0, 0.0);
        assert!(s0.abs() < 1e-7 && (s1 - 1.0).abs() < 1e-7, "{s0} {s1}");
        // Parallel vectors: linear.
        assert_eq!(slerp_factors(0.25, 4.0, 4.0, 4.0), (0.75, 0.25));
    }

    #[test]
    fn dare_keeps_about_density() {
        let s = dare_stream(42, "blk.0.attn_q.weight", 1);
        let kept = (0..100_000).filter(|&i| dare_keep(s, i, 0.3)).count();
        assert!((28_500..31_500).contains(&kept), "{kept}");
    }
}
