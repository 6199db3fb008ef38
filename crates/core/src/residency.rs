//! Page residency: prefetching a region into RAM, pinning it, and measuring how much of it is
//! resident — what the manager's `boostInferenceSpeed` reports (fraction before and after).
//!
//! The platform parts (madvise, mlock, mincore) sit in `platform.rs`; `mincore` is Linux-only,
//! elsewhere [`Residency`] is `None`.

use crate::engine::{Engine, RegionId};
use crate::error::{EngineError, Result};
use crate::image::{Progress, ProgressFn};

/// How much of a region's map is in RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residency {
    /// Pages resident in RAM.
    pub resident_pages: u64,
    /// Pages of the map.
    pub total_pages: u64,
    /// Page size in bytes.
    pub page_size: u64,
}

impl Residency {
    /// Resident fraction in 0..=1 (1 for an empty region).
    pub fn fraction(&self) -> f64 {
        if self.total_pages == 0 {
            1.0
        } else {
            self.resident_pages as f64 / self.total_pages as f64
        }
    }
}

impl Engine {
    /// How much of the region is resident in RAM (`None` where the platform cannot tell).
    pub fn residency(&self, region: RegionId) -> Result<Option<Residency>> {
        self.view(|v| v.residency(region))
    }

    /// Reads the region's pages into RAM: `madvise(WILLNEED)`, then one read per page
    /// (`progress` counts bytes; cancelling stops early). Returns the residency afterwards.
    pub fn prefetch(
        &self,
        region: RegionId,
        progress: ProgressFn<'_>,
    ) -> Result<Option<Residency>> {
        self.view(|v| -> Result<()> {
            v.advise_willneed(region)?;
            let len = v.len(region)?;
            let bytes = v.bytes(region, 0, len)?;
            let page = region::page::size();
            let mut sum = 0u8;
            for (i, chunk) in bytes.chunks(64 << 20).enumerate() {
                for p in chunk.iter().step_by(page) {
                    sum = sum.wrapping_add(*p);
                }
                let done = ((i as u64 + 1) * (64 << 20)).min(len);
                if !progress(Progress { done, total: len }) {
                    return Err(EngineError::Cancelled);
                }
            }
            std::hint::black_box(sum);
            Ok(())
        })?;
        self.residency(region)
    }

    /// Pins the region's pages in RAM (`mlock`) or releases them. Pinned pages are released
    /// when the region is unmapped. Pinning needs RLIMIT_MEMLOCK room (root has it here).
    pub fn pin(&self, region: RegionId, pin: bool) -> Result<()> {
        self.with_region_mut(region, |r| r.set_pinned(pin))
    }
}
