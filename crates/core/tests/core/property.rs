//! Property: 10,000 random operations across layers and regions, checked against an
//! independent reference after every step; then undo-all restores the original bytes and
//! redo-all equals applying the operations directly.

use hotpatch_core::*;

use super::common::{hash, scratch, Rng};

/// The reference: plain vectors, operations written independently of `hotpatch_core::ops`.
struct Model {
    regions: Vec<Vec<u8>>,
}

fn mask_apply(op: u64, b: u8, m: u8, k: u32) -> u8 {
    match op {
        0 => b & m,
        1 => b | m,
        2 => b ^ m,
        3 => b ^ m, // NOT of the masked bits
        4 => (b & !m) | ((((b as u16) << k) as u8) & m),
        _ => (b & !m) | ((b >> k) & m),
    }
}

fn run(seed: u64, n_ops: usize) {
    let dir = scratch(&format!("prop-{seed}"));
    let mut rng = Rng(seed);
    let a_path = dir.join("a.bin");
    let b_path = dir.join("b.bin");
    let a0 = rng.bytes(16 << 10);
    let b_file = rng.bytes(12 << 10);
    std::fs::write(&a_path, &a0).unwrap();
    std::fs::write(&b_path, &b_file).unwrap();
    let e = Engine::new();
    let ra = e.open(&a_path, Mode::Staged).unwrap();
    // The bytes layer works on a window of another file.
    let rb = e
        .bytes()
        .map_region(&b_path, 1000, 8 << 10, Mode::Staged)
        .unwrap();
    let b0 = b_file[1000..1000 + (8 << 10)].to_vec();
    let ids = [ra, rb];
    let mut m = Model {
        regions: vec![a0.clone(), b0.clone()],
    };
    let mut steps = 0usize; // undo steps recorded
    let mut group_open = 0usize;
    let mut group_had_change = false;
    let mut group_guards = Vec::new();

    for i in 0..n_ops {
        let ri = rng.below(2) as usize;
        let r = ids[ri];
        let len_r = m.regions[ri].len() as u64;
        let layer = if rng.below(2) == 0 {
            e.memory()
        } else {
            e.bytes()
        };
        let off = rng.below(len_r);
        let len = rng.below((len_r - off).min(300)) + 1;
        let (o, l) = (off as usize, len as usize);
        let before = m.regions.clone();
        let kind = rng.below(16);
        let result = match kind {
            0 => {
                let bytes = rng.bytes(l);
                m.regions[ri][o..o + l].copy_from_slice(&bytes);
                layer.write(r, off, &bytes)
            }
            1 => {
                // A batch over both regions, non-overlapping (split points), sometimes invalid.
                let invalid = rng.below(5) == 0;
                let p1 = Patch::new(ra, rng.below(1000), rng.bytes(8));
                let p2 = Patch::new(rb, 2000 + rng.below(1000), rng.bytes(16));
                let p3 = if invalid {
                    Patch::new(rb, (8 << 10) - 4, vec![1; 8])
                } else {
                    Patch::new(ra, 5000, rng.bytes(4))
                };
                let res = layer.write_batch(vec![p1.clone(), p2.clone(), p3.clone()]);
                if invalid {
                    assert!(
                        matches!(res, Err(EngineError::OutOfBounds { .. })),
                        "op {i}: invalid batch refused"
                    );
                    assert_eq!(
                        e.read(ra, 0, 16 << 10).unwrap(),
                        m.regions[0],
                        "op {i}: refused batch changed nothing"
                    );
                    continue;
                }
                for p in [&p1, &p2, &p3] {
                    let ri = usize::from(p.region == rb);
                    m.regions[ri][p.offset as usize..p.offset as usize + p.bytes.len()]
                        .copy_from_slice(&p.bytes);
                }
                res
            }
            2 => {
                let n = rng.below(4) as usize + 1;
                let pat = rng.bytes(n);
                for (j, x) in m.regions[ri][o..o + l].iter_mut().enumerate() {
                    *x = pat[j % pat.len()];
                }
                layer.fill(r, off, len, &pat)
            }
            3 => {
                // memmove within or across regions
                let si = rng.below(2) as usize;
                let s_len = m.regions[si].len() as u64;
                let l2 = len.min(s_len);
                let src = rng.below(s_len - l2 + 1);
                let dst = rng.below(len_r - l2 + 1);
                let tmp = m.regions[si][src as usize..(src + l2) as usize].to_vec();
                m.regions[ri][dst as usize..(dst + l2) as usize].copy_from_slice(&tmp);
                layer.copy(ids[si], src, r, dst, l2)
            }
            4 => {
                let a = rng.below(len_r / 2 - 64);
                let b = len_r / 2 + rng.below(len_r / 2 - 64);
                let l2 = rng.below(64) + 1;
                for j in 0..l2 as usize {
                    m.regions[ri].swap(a as usize + j, b as usize + j);
                }
                layer.swap(r, a, r, b, l2)
            }
            5 => {
                let n = rng.below(5) as usize + 1;
                let key = rng.bytes(n);
                for (j, x) in m.regions[ri][o..o + l].iter_mut().enumerate() {
                    *x ^= key[j % key.len()];
                }
                layer.xor(r, off, len, &key)
            }
            6 => {
                let which = rng.below(6);
                let k = rng.below(8) as u32;
                let n = rng.below(3) as usize + 1;
                let mask = rng.bytes(n);
                let op = [
                    BitOp::And,
                    BitOp::Or,
                    BitOp::Xor,
                    BitOp::Not,
                    BitOp::Shl(k),
                    BitOp::Shr(k),
                ][which as usize];
                for (j, x) in m.regions[ri][o..o + l].iter_mut().enumerate() {
                    *x = mask_apply(which, *x, mask[j % mask.len()], k);
                }
                layer.bit_op(r, off, len, op, &mask)
            }
            7 => {
                let bits = rng.below(15) as i32 - 7;
                for x in &mut m.regions[ri][o..o + l] {
                    *x = if bits >= 0 {
                        x.rotate_left(bits as u32)
                    } else {
                        x.rotate_right((-bits) as u32)
                    };
                }
                layer.rotate_bits(r, off, len, bits)
            }
            8 => {
                let n = rng.below(2 * len + 1) as i64 - len as i64;
                let s = &mut m.regions[ri][o..o + l];
                let k = n.rem_euclid(len as i64) as usize;
                let rot: Vec<u8> = s[k..].iter().chain(&s[..k]).copied().collect();
                s.copy_from_slice(&rot);
                layer.rotate_range(r, off, len, n)
            }
            9 => {
                let s = &mut m.regions[ri][o..o + l];
                let rev: Vec<u8> = s.iter().rev().copied().collect();
                s.copy_from_slice(&rev);
                layer.reverse(r, off, len)
            }
            10 => {
                let w = [2usize, 4, 8][rng.below(3) as usize];
                let l2 = (l / w).max(1) * w;
                if o + l2 > m.regions[ri].len() {
                    continue;
                }
                for c in m.regions[ri][o..o + l2].chunks_mut(w) {
                    let rev: Vec<u8> = c.iter().rev().copied().collect();
                    c.copy_from_slice(&rev);
                }
                layer.reverse_elements(r, off, l2 as u64, w)
            }
            11 if group_open < 3 => {
                group_guards.push(e.begin_group(Origin::new(
                    Layer::Manager,
                    Operation::Other(format!("group at {i}")),
                    Target::None,
                )));
                group_open += 1;
                continue;
            }
            12 if group_open > 0 => {
                group_guards.pop().unwrap().end().unwrap();
                group_open -= 1;
                if group_open == 0 && group_had_change {
                    steps += 1;
                    group_had_change = false;
                }
                continue;
            }
            13 if group_open == 0 && rng.below(20) == 0 => {
                e.save(ra, &mut |_| true).unwrap();
                continue;
            }
            14 if group_open == 0 => {
                // Undo then redo: undo must give back exactly the state before the last step.
                if e.can_undo() {
                    e.undo().unwrap();
                    e.redo().unwrap();
                }
                assert_eq!(
                    e.read(ra, 0, 16 << 10).unwrap(),
                    m.regions[0],
                    "op {i}: undo+redo is the identity"
                );
                continue;
            }
            _ => {
                let bytes = rng.bytes(l);
                m.regions[ri][o..o + l].copy_from_slice(&bytes);
                e.update(
                    Origin::new(Layer::Tensor, Operation::Write, Target::None),
                    r,
                    off,
                    len,
                    |b| b.copy_from_slice(&bytes),
                )
                .map(|x| x.1)
            }
        };
        let applied = result.unwrap_or_else(|err| panic!("op {i} (kind {kind}) failed: {err}"));
        if m.regions != before {
            if group_open > 0 {
                group_had_change = true;
            } else {
                steps += 1;
            }
            assert!(
                applied.change.is_some(),
                "op {i}: a change that altered bytes is recorded"
            );
        }
        for (k, id) in ids.iter().enumerate() {
            let got = e.read(*id, 0, m.regions[k].len() as u64).unwrap();
            assert!(
                got == m.regions[k],
                "op {i} (kind {kind}): region {k} differs from the reference"
            );
        }
    }
    while let Some(g) = group_guards.pop() {
        g.end().unwrap();
    }
    if group_had_change {
        steps += 1;
    }
    let direct = m.regions.clone();
    assert_eq!(
        e.history().len(),
        steps,
        "one undo step per changing operation or outermost group"
    );
    let undone = e.undo_all().unwrap();
    assert_eq!(undone, steps);
    let ha = hash(&e.read(ra, 0, 16 << 10).unwrap());
    let hb = hash(&e.read(rb, 0, 8 << 10).unwrap());
    assert_eq!(
        (ha, hb),
        (hash(&a0), hash(&b0)),
        "undo-all leaves byte-identical regions (seed {seed})"
    );
    e.save(ra, &mut |_| true).unwrap();
    assert_eq!(
        hash(&std::fs::read(&a_path).unwrap()),
        hash(&a0),
        "and saving that writes the original file back"
    );
    e.redo_all().unwrap();
    assert_eq!(
        e.read(ra, 0, 16 << 10).unwrap(),
        direct[0],
        "redo-all equals applying the operations directly (region a)"
    );
    assert_eq!(
        e.read(rb, 0, 8 << 10).unwrap(),
        direct[1],
        "redo-all equals applying the operations directly (region b)"
    );
}

#[test]
fn ten_thousand_random_operations_undo_and_redo_exactly() {
    run(0x9e37_79b9_7f4a_7c15, 10_000);
}

#[test]
fn random_operations_other_seeds() {
    for seed in [1u64, 0xdead_beef, 42] {
        run(seed, 2_000);
    }
}
