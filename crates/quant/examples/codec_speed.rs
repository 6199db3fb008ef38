//! Times this crate's codecs on a file of blocks, for `scripts/bench/kiquant_codecs.py`.
//!
//! usage: codec_speed TYPE BLOCKS_FILE REPS [QUANT_REPS]
//! Prints one JSON line: `{"type", "values", "dequant_s", "quant_s"}` — the best of REPS runs
//! of dequantizing the whole file, and of QUANT_REPS (default 3; 0 to skip) runs quantizing its
//! dequantized values back (`null` when skipped or the type has no quantizer here).

use hotpatch_quant::{dequantize, quantize, GgmlType};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 && args.len() != 5 {
        return Err("usage: codec_speed TYPE BLOCKS_FILE REPS [QUANT_REPS]".into());
    }
    let quant_reps: usize = args.get(4).map_or(Ok(3), |s| s.parse())?;
    let ty = GgmlType::from_name(&args[1]).ok_or("unknown type")?;
    let blocks = std::fs::read(&args[2])?;
    let reps: usize = args[3].parse()?;
    let n = blocks.len() / ty.type_size() * ty.block_size();
    let mut values = vec![0f32; n];
    // Untimed first pass: faults the output pages in (ggml's side is warmed the same way).
    dequantize(ty, &blocks, &mut values)?;
    let mut best_d = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        dequantize(ty, &blocks, &mut values)?;
        best_d = best_d.min(t.elapsed().as_secs_f64());
    }
    let mut best_q = None;
    if ty.can_quantize() && quant_reps > 0 {
        let mut out = vec![0u8; blocks.len()];
        let mut best = f64::INFINITY;
        for _ in 0..quant_reps {
            let t = Instant::now();
            quantize(ty, &values, &mut out)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        best_q = Some(best);
    }
    let q = best_q.map_or("null".to_string(), |s| format!("{s}"));
    println!("{{\"type\":\"{ty}\",\"values\":{n},\"dequant_s\":{best_d},\"quant_s\":{q}}}");
    Ok(())
}
