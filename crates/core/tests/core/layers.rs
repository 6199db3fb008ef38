//! Memory-layer and bytes-layer operations against independent reference implementations.

use hotpatch_core::*;

use super::common::*;

#[test]
fn byte_operations_match_reference() {
    let dir = scratch("byteops");
    let (path, data) = data_file(&dir, "m.bin", 4096, 41);
    let e = Engine::new();
    let r = e.bytes().load(&path).unwrap();
    let b = e.bytes();
    let mut want = data.clone();

    b.xor(r, 10, 7, &[1, 2, 3]).unwrap();
    for i in 0..7 {
        want[10 + i] ^= [1, 2, 3][i % 3];
    }
    b.bit_op(r, 100, 4, BitOp::And, &[0x0f]).unwrap();
    for x in &mut want[100..104] {
        *x &= 0x0f;
    }
    b.bit_op(r, 200, 4, BitOp::Shl(3), &[0xf0]).unwrap();
    for x in &mut want[200..204] {
        *x = (*x & 0x0f) | ((*x << 3) & 0xf0);
    }
    b.bit_op(r, 300, 2, BitOp::Not, &[0xff]).unwrap();
    for x in &mut want[300..302] {
        *x = !*x;
    }
    b.rotate_bits(r, 400, 3, -1).unwrap();
    for x in &mut want[400..403] {
        *x = x.rotate_right(1);
    }
    b.rotate_range(r, 500, 10, 3).unwrap();
    want[500..510].rotate_left(3);
    b.rotate_range(r, 600, 10, -3).unwrap();
    want[600..610].rotate_right(3);
    b.reverse(r, 700, 9).unwrap();
    want[700..709].reverse();
    b.reverse_elements(r, 800, 8, 4).unwrap();
    want[800..804].reverse();
    want[804..808].reverse();
    assert!(matches!(
        b.reverse_elements(r, 800, 7, 4),
        Err(EngineError::InvalidArgument { what: "width", .. })
    ));
    // memmove: overlapping copy forward and backward.
    b.copy(r, 1000, r, 1004, 16).unwrap();
    want.copy_within(1000..1016, 1004);
    b.copy(r, 2004, r, 2000, 16).unwrap();
    want.copy_within(2004..2020, 2000);
    b.swap(r, 3000, r, 3100, 8).unwrap();
    for i in 0..8 {
        want.swap(3000 + i, 3100 + i);
    }
    assert!(
        b.swap(r, 3000, r, 3004, 8).is_err(),
        "overlapping swap is refused"
    );
    b.fill(r, 3500, 5, &[0xAB, 0xCD]).unwrap();
    want[3500..3505].copy_from_slice(&[0xAB, 0xCD, 0xAB, 0xCD, 0xAB]);
    assert_eq!(
        e.read(r, 0, 4096).unwrap(),
        want,
        "every transform matches its reference"
    );
    e.undo_all().unwrap();
    assert_eq!(
        e.read(r, 0, 4096).unwrap(),
        data,
        "and undo-all restores the original"
    );
}

#[test]
fn compare_within_and_across_files() {
    let dir = scratch("compare");
    let (a, da) = data_file(&dir, "a.bin", 10_000, 43);
    let mut db = da.clone();
    db[1234] ^= 1;
    db[9999] ^= 0x80;
    let b = dir.join("b.bin");
    std::fs::write(&b, &db).unwrap();
    let e = Engine::new();
    let ra = e.bytes().load(&a).unwrap();
    let rb = e.bytes().load(&b).unwrap();
    let c = e.bytes().compare(ra, 0, rb, 0, 10_000).unwrap();
    assert_eq!(
        (c.first_difference, c.differing),
        (Some(1234), 2),
        "two bytes differ, the first at 1234"
    );
    let (c2, la, lb) = compare_files(&a, &b).unwrap();
    assert_eq!(
        (c2.first_difference, c2.differing, la, lb),
        (Some(1234), 2, 10_000, 10_000)
    );
    let same = e.memory().compare(ra, 0, rb, 0, 1234).unwrap();
    assert!(same.equal(), "the first 1234 bytes are equal");

    // A range of a region against a range of a file not loaded: the file is mapped for the
    // comparison only. Offsets shift both sides: a[1000..] vs b[1000..], 500 bytes.
    let regions = e.regions().len();
    let c3 = e.bytes().compare_file(ra, 1000, &b, 1000, 500).unwrap();
    assert_eq!(
        (c3.first_difference, c3.differing, c3.len),
        (Some(234), 1, 500)
    );
    assert_eq!(
        e.regions().len(),
        regions,
        "the other file is unmapped after"
    );
    assert!(
        e.bytes().compare_file(ra, 9990, &b, 0, 20).is_err(),
        "our range past the end is refused"
    );
    assert!(
        e.bytes().compare_file(ra, 0, &b, 9990, 20).is_err(),
        "their range past the end is refused"
    );
    assert_eq!(e.regions().len(), regions);
}

#[test]
fn search_matches_naive_scan() {
    let dir = scratch("search");
    let mut rng = Rng(99);
    // Low-entropy data so that wildcard patterns match often.
    let data: Vec<u8> = (0..200_000).map(|_| (rng.next_u64() % 4) as u8).collect();
    let path = dir.join("m.bin");
    std::fs::write(&path, &data).unwrap();
    let e = Engine::new();
    let r = e.open(&path, Mode::ReadOnly).unwrap();
    for pat in [
        "01 02 03",
        "01 ?? 03 00",
        "?? 02",
        "03 03 03 03 ?? 01",
        "?? ??",
        "0? 02 ?3",
        "?1 ??",
    ] {
        let p = Pattern::parse_hex(pat).unwrap();
        let naive: Vec<u64> = (0..=data.len() - p.len())
            .filter(|&i| {
                p.items()
                    .iter()
                    .enumerate()
                    .all(|(j, b)| data[i + j] & b.mask == b.value)
            })
            .map(|i| i as u64)
            .collect();
        let got: Vec<u64> = e
            .memory()
            .search(&p, Scope::All, usize::MAX, &mut |_| true)
            .unwrap()
            .iter()
            .map(|m| m.offset)
            .collect();
        if naive.len() > 3 {
            let (first, more) = e
                .bytes()
                .search_upto(&p, Scope::All, 3, &mut |_| true)
                .unwrap();
            assert!(more, "pattern {pat}: more than 3 matches exist");
            assert_eq!(
                first.iter().map(|m| m.offset).collect::<Vec<_>>(),
                naive[..3],
                "pattern {pat}: the first 3 matches"
            );
        }
        assert_eq!(
            got, naive,
            "pattern {pat}: every (overlapping) match, in order"
        );
    }
    let limited = e.memory().find_hex("00", Scope::Region(r), 10);
    assert!(
        matches!(limited, Err(EngineError::LimitReached { limit: 10, .. })),
        "the match limit is enforced"
    );
    assert!(
        matches!(
            e.memory().write(r, 0, &[1]),
            Err(EngineError::ReadOnlyRegion(_))
        ),
        "read-only regions refuse writes"
    );
}
