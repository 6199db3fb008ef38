//! Runtime CPU-feature dispatch for the codec loops.
//!
//! The codecs are plain scalar Rust written so the compiler vectorizes it. [`dispatch`] runs a
//! loop compiled a second time with AVX2 enabled when the CPU has it (the default x86-64
//! target only assumes SSE2). Enabling AVX2 does not change any result: Rust never contracts
//! `a * b + c` into a fused multiply-add, and integer/float conversions are exact or
//! round-to-nearest in both code paths.

/// Runs `f`, compiled with AVX2 when the CPU supports it. Mark the closure
/// `#[inline(always)]` (and the functions it calls) so its body is compiled inside the
/// AVX2-enabled frame.
#[inline(always)]
pub(crate) fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `avx2` only requires the CPU to support AVX2, checked just above.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Runs one codec loop through [`dispatch`], compiled with AVX2 when available (one
/// instantiation per call site, so each loop is vectorized on its own).
macro_rules! run {
    ($f:expr) => {
        crate::simd::dispatch(
            #[inline(always)]
            || $f,
        )
    };
}
pub(crate) use run;
