//! Image, journal, save, protection, groups, temporary patches, events.

use std::time::Duration;

use hotpatch_core::*;

use super::common::*;

fn origin() -> Origin {
    Origin::new(Layer::Memory, Operation::Write, Target::None)
}

#[test]
fn staged_write_undo_redo_save_writes_only_changed_bytes() {
    let dir = scratch("staged");
    let (path, data) = data_file(&dir, "m.bin", 1 << 20, 7);
    let e = Engine::new();
    let r = e.open(&path, Mode::Staged).unwrap();
    let m = e.memory();
    m.write(r, 1000, &[1, 2, 3, 4]).unwrap();
    assert_eq!(
        m.read(r, 1000, 4).unwrap(),
        vec![1, 2, 3, 4],
        "the staged image shows the write"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        data,
        "staged writes do not reach the file before Save"
    );
    e.undo().unwrap();
    assert_eq!(
        m.read(r, 1000, 4).unwrap(),
        data[1000..1004].to_vec(),
        "undo restores the original bytes"
    );
    e.redo().unwrap();
    assert_eq!(
        m.read(r, 1000, 4).unwrap(),
        vec![1, 2, 3, 4],
        "redo re-applies the write"
    );
    // A second edit far away, plus one that writes the same bytes (no change).
    m.write(r, 900_000, &[9; 10]).unwrap();
    m.write(r, 5, &data[5..9]).unwrap();
    let rep = e.save(r, &mut |_| true).unwrap();
    let expect_changed = [1u8, 2, 3, 4]
        .iter()
        .zip(&data[1000..1004])
        .filter(|(a, b)| a != b)
        .count() as u64
        + data[900_000..900_010].iter().filter(|b| **b != 9).count() as u64;
    assert!(
        rep.bytes_written <= 14 && rep.bytes_written >= expect_changed,
        "save writes only the changed ranges: {} bytes written, {expect_changed} differ",
        rep.bytes_written
    );
    assert_eq!(rep.ranges, 2, "two separate changed ranges");
    let mut want = data.clone();
    want[1000..1004].copy_from_slice(&[1, 2, 3, 4]);
    want[900_000..900_010].fill(9);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        want,
        "the file holds exactly the edits after Save"
    );
    assert!(
        !wal::journal_path(&path).exists(),
        "the journal is deleted after a completed save"
    );
    assert_eq!(
        e.region_info(r).unwrap().dirty_bytes,
        0,
        "nothing left dirty after save"
    );
    // Undo after save makes the range dirty again; a second save restores the file.
    e.undo().unwrap();
    e.save(r, &mut |_| true).unwrap();
    want[900_000..900_010].copy_from_slice(&data[900_000..900_010]);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        want,
        "undo + save writes the original bytes back"
    );
}

#[test]
fn save_as_writes_a_whole_copy_atomically() {
    let dir = scratch("saveas");
    let (path, data) = data_file(&dir, "m.bin", 100_000, 3);
    let e = Engine::new();
    let r = e.open(&path, Mode::Staged).unwrap();
    e.memory().fill(r, 10, 20, &[0xAA, 0xBB]).unwrap();
    let out = dir.join("copy.bin");
    let n = e.save_as(r, &out, &mut |_| true).unwrap();
    assert_eq!(n, data.len() as u64);
    let copy = std::fs::read(&out).unwrap();
    assert_eq!(
        &copy[10..14],
        &[0xAA, 0xBB, 0xAA, 0xBB],
        "the copy has the edit"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        data,
        "Save As leaves the original untouched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|d| d.ok())
        .filter(|d| d.file_name().to_string_lossy().contains("hotpatch-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left behind");
}

#[test]
fn live_writes_reach_the_file_at_once_and_undo_too() {
    let dir = scratch("live");
    let (path, data) = data_file(&dir, "m.bin", 64 << 10, 5);
    let e = Engine::new();
    let r = e.open(&path, Mode::Live).unwrap();
    e.memory().write(r, 4096, b"LIVE").unwrap();
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(
        &on_disk[4096..4100],
        b"LIVE",
        "a live write is visible to a separate read of the file immediately"
    );
    assert!(
        !wal::journal_path(&path).exists(),
        "the live write's journal is gone once the write is durable"
    );
    e.undo().unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        data,
        "undo of a live write restores the file"
    );
}

#[test]
fn batch_is_all_or_nothing() {
    let dir = scratch("batch");
    let (path, data) = data_file(&dir, "m.bin", 4096, 11);
    let e = Engine::new();
    let r = e.open(&path, Mode::Staged).unwrap();
    let m = e.memory();
    let bad = m.write_batch(vec![
        Patch::new(r, 0, vec![1; 8]),
        Patch::new(r, 4090, vec![2; 8]),
    ]);
    assert!(
        matches!(
            bad,
            Err(EngineError::OutOfBounds {
                offset: 4090,
                len: 8,
                ..
            })
        ),
        "out-of-bounds write named: {bad:?}"
    );
    assert_eq!(
        m.read(r, 0, 8).unwrap(),
        data[..8].to_vec(),
        "the valid first write of a failed batch was not applied"
    );
    let overlap = m.write_batch(vec![
        Patch::new(r, 0, vec![1; 8]),
        Patch::new(r, 7, vec![2; 2]),
    ]);
    assert!(
        matches!(
            overlap,
            Err(EngineError::OverlappingBatch {
                first: 0,
                second: 1,
                offset: 7,
                ..
            })
        ),
        "{overlap:?}"
    );
    e.protect(r, 100, 10, "test lock", false).unwrap();
    let prot = m.write_batch(vec![
        Patch::new(r, 0, vec![1; 8]),
        Patch::new(r, 105, vec![2; 2]),
    ]);
    assert!(
        matches!(
            prot,
            Err(EngineError::Protected {
                offset: 105,
                protected_start: 100,
                protected_end: 110,
                ..
            })
        ),
        "{prot:?}"
    );
    assert_eq!(
        m.read(r, 0, 8).unwrap(),
        data[..8].to_vec(),
        "nothing of a refused batch is written"
    );
    assert!(!e.can_undo(), "a refused batch leaves no history");
    let ok = m
        .write_batch(vec![
            Patch::new(r, 0, vec![1; 8]),
            Patch::new(r, 200, vec![2; 2]),
        ])
        .unwrap();
    assert_eq!(e.history().len(), 1, "a batch is one undo step");
    assert!(ok.bytes_written == 10);
    e.undo().unwrap();
    assert_eq!(
        e.read(r, 0, 4096).unwrap(),
        data,
        "undoing the batch undoes both writes"
    );
}

#[test]
fn protection_logical_and_pages() {
    let dir = scratch("protect");
    let page = 4096u64;
    let (path, data) = data_file(&dir, "m.bin", (page * 8) as usize, 13);
    for mode in [Mode::Staged, Mode::Live] {
        std::fs::write(&path, &data).unwrap();
        let e = Engine::new();
        let r = e.open(&path, mode).unwrap();
        let m = e.memory();
        m.write(r, page * 2 + 1, &[0x55]).unwrap();
        let id = m
            .set_protection(r, page, page * 3 + 100, true)
            .unwrap()
            .unwrap();
        let p = e.protections().into_iter().find(|p| p.id == id).unwrap();
        let (po, pl) = p
            .pages
            .expect("a range covering whole pages gets page protection");
        let info = e.region_info(r).unwrap();
        assert_eq!(
            (info.address as u64 + po) % page,
            0,
            "protected span starts on a page boundary"
        );
        assert!(
            po >= page && po + pl <= page * 4 + 100,
            "page span lies inside the logical range"
        );
        let addr = info.address as u64 + po;
        assert_eq!(
            page_perms(addr).as_deref(),
            Some("r--"),
            "the kernel maps the locked pages read-only"
        );
        // Every write path refuses, with a clear error, and nothing crashes.
        let w = m.write(r, page * 2, &[1]);
        assert!(
            matches!(w, Err(EngineError::Protected { .. })),
            "write into a protected range: {w:?}"
        );
        assert!(
            matches!(
                m.fill(r, 0, page * 2, &[0]),
                Err(EngineError::Protected { .. })
            ),
            "fill overlapping it"
        );
        assert!(
            matches!(
                m.copy(r, 0, r, page * 3, 10),
                Err(EngineError::Protected { .. })
            ),
            "copy into it"
        );
        assert!(
            matches!(
                e.bytes().xor(r, page * 4 + 50, 8, &[1]),
                Err(EngineError::Protected { .. })
            ),
            "layer 2 too"
        );
        assert!(
            matches!(e.undo(), Err(EngineError::Protected { .. })),
            "undo of a change inside a locked range is refused"
        );
        // Reads still work through the protected pages.
        assert_eq!(m.read(r, page * 2 + 1, 1).unwrap(), vec![0x55]);
        // Writes just outside work.
        m.write(r, page * 4 + 100, &[7]).unwrap();
        m.set_protection(r, page, page * 3 + 100, false).unwrap();
        assert!(
            e.protections().is_empty(),
            "read-write removes the protection"
        );
        assert_eq!(
            page_perms(addr).as_deref(),
            Some("rw-"),
            "and the pages are writable again"
        );
        m.write(r, page * 2, &[1]).unwrap();
        e.undo_all().unwrap();
        assert_eq!(
            e.read(r, 0, page * 8).unwrap(),
            data,
            "undo-all restores everything once unlocked ({mode:?})"
        );
    }
}

#[test]
fn groups_nest_and_abort() {
    let dir = scratch("groups");
    let (path, data) = data_file(&dir, "m.bin", 1024, 17);
    let e = Engine::new();
    let r = e.open(&path, Mode::Staged).unwrap();
    let m = e.memory();
    {
        let g = e.begin_group(Origin::new(
            Layer::Manager,
            Operation::Other("preset".into()),
            Target::None,
        ));
        m.write(r, 0, &[1]).unwrap();
        {
            let inner = e.begin_group(origin());
            m.write(r, 1, &[2]).unwrap();
            inner.end().unwrap();
        }
        let aborted = e.begin_group(origin());
        m.write(r, 2, &[3]).unwrap();
        aborted.abort().unwrap();
        assert_eq!(
            m.read(r, 2, 1).unwrap(),
            vec![data[2]],
            "aborting a nested group reverts only its changes"
        );
        m.write(r, 3, &[4]).unwrap();
        g.end().unwrap();
    }
    assert_eq!(e.history().len(), 1, "nested groups form one undo step");
    assert_eq!(m.read(r, 0, 4).unwrap(), vec![1, 2, data[2], 4]);
    e.undo().unwrap();
    assert_eq!(
        m.read(r, 0, 1024).unwrap(),
        data,
        "one undo reverts the whole group"
    );
    let failed: Result<()> = e.group(origin(), |e| {
        e.memory().write(r, 10, &[1, 2, 3])?;
        e.memory().write(r, 2000, &[1])?; // out of bounds
        Ok(())
    });
    assert!(failed.is_err());
    assert_eq!(
        m.read(r, 0, 1024).unwrap(),
        data,
        "a failed closure group reverts what it did"
    );
}

#[test]
fn temporary_patches_revert_on_drop_and_on_timer() {
    let dir = scratch("temp");
    let (path, data) = data_file(&dir, "m.bin", 1024, 19);
    let e = Engine::new();
    let r = e.open(&path, Mode::Live).unwrap();
    let events = e.subscribe();
    {
        let _g = e
            .apply_temporary(origin(), vec![Patch::new(r, 0, vec![0xEE; 4])], None)
            .unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap()[..4],
            [0xEE; 4],
            "temporary live patch is in the file"
        );
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        data,
        "dropping the guard reverted it"
    );
    let g = e
        .apply_temporary(
            origin(),
            vec![Patch::new(r, 100, vec![0xDD; 4])],
            Some(Duration::from_millis(100)),
        )
        .unwrap();
    assert_eq!(e.read(r, 100, 4).unwrap(), vec![0xDD; 4]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while e.read(r, 100, 4).unwrap() == vec![0xDD; 4] && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        e.read(r, 100, 4).unwrap(),
        data[100..104].to_vec(),
        "the timer reverted the patch"
    );
    assert!(g.revert().unwrap().is_none(), "reverting again is a no-op");
    // A later edit inside a temporary patch survives its revert.
    let g = e
        .apply_temporary(origin(), vec![Patch::new(r, 200, vec![0xCC; 4])], None)
        .unwrap();
    e.memory().write(r, 201, &[0x11]).unwrap();
    g.revert().unwrap();
    let got = e.read(r, 200, 4).unwrap();
    assert_eq!(
        got,
        vec![data[200], 0x11, data[202], data[203]],
        "revert only restores bytes still holding the patch"
    );
    let ops: Vec<Operation> = events.try_iter().map(|ev| ev.origin.operation).collect();
    assert_eq!(
        ops.iter()
            .filter(|o| **o == Operation::TemporaryRevert)
            .count(),
        3,
        "each revert emitted an event: {ops:?}"
    );
    e.undo_all().unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        data,
        "apply/revert are ordinary journal entries: undo-all restores the file"
    );
}

#[test]
fn events_are_delivered_in_order_with_details() {
    let dir = scratch("events");
    let (path, _) = data_file(&dir, "m.bin", 1024, 23);
    let e = Engine::new();
    let r = e.open(&path, Mode::Staged).unwrap();
    let rx = e.subscribe();
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    e.on_event(move |ev| s2.lock().push(ev.id));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    e.memory().write(r, t * 100 + i, &[i as u8 ^ 0x5a]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let got: Vec<Event> = rx.try_iter().collect();
    assert_eq!(got.len(), 200, "one event per write");
    assert!(
        got.windows(2).all(|w| w[0].id < w[1].id),
        "channel events arrive in id order"
    );
    assert!(
        seen.lock().windows(2).all(|w| w[0] < w[1]),
        "callback events arrive in id order"
    );
    let ev = &got[0];
    assert_eq!(ev.origin.layer, Layer::Memory);
    assert_eq!(ev.origin.operation, Operation::Write);
    assert!(matches!(ev.origin.target, Target::Range { len: 1, .. }));
    assert!(ev.undoable && ev.bytes_written == 1 && ev.change.is_some());
}

#[test]
fn windows_and_cross_region_operations() {
    let dir = scratch("windows");
    let (a, da) = data_file(&dir, "a.bin", 100_000, 29);
    let (b, db) = data_file(&dir, "b.bin", 100_000, 31);
    let e = Engine::new();
    let ra = e.open(&a, Mode::Staged).unwrap();
    let wb = e
        .memory()
        .map_region(&b, 50_000, 1000, Mode::Staged)
        .unwrap();
    assert_eq!(
        e.read(wb, 0, 10).unwrap(),
        db[50_000..50_010].to_vec(),
        "window offset 0 is file offset 50000"
    );
    assert!(matches!(
        e.read(wb, 995, 10),
        Err(EngineError::OutOfBounds {
            region_len: 1000,
            ..
        })
    ));
    e.memory().copy(ra, 0, wb, 10, 100).unwrap();
    assert_eq!(
        e.read(wb, 10, 100).unwrap(),
        da[..100].to_vec(),
        "copy across regions"
    );
    let rep = e.save(wb, &mut |_| true).unwrap();
    assert!(rep.bytes_written <= 100);
    let fb = std::fs::read(&b).unwrap();
    assert_eq!(
        &fb[50_010..50_110],
        &da[..100],
        "saving a window writes at the window's file offset"
    );
    assert_eq!(
        &fb[..50_010],
        &db[..50_010],
        "bytes before the window are untouched"
    );
    e.unmap_region(wb).unwrap();
    assert!(matches!(
        e.read(wb, 0, 1),
        Err(EngineError::NoSuchRegion(_))
    ));
    assert!(
        !e.can_undo(),
        "history entries touching an unmapped region are dropped"
    );
}

#[test]
fn corrupt_or_conflicting_journal_is_refused() {
    let dir = scratch("badjournal");
    let (path, data) = data_file(&dir, "m.bin", 1000, 37);
    let j = wal::journal_path(&path);
    std::fs::write(&j, b"HPJRNL\0\x01garbage that is not a journal at all....").unwrap();
    let e = Engine::new();
    let err = e.open(&path, Mode::Staged).unwrap_err();
    assert!(matches!(err, EngineError::CorruptJournal { .. }), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        data,
        "a corrupt journal touches nothing"
    );
    std::fs::remove_file(&j).unwrap();
    // A leftover temporary journal (crash while writing it) is simply discarded — once no live
    // writer holds it (see hotpatch-atomic): the name older builds used, and this build's.
    let mut tmp = j.clone().into_os_string();
    tmp.push(".tmp");
    let jname = j.file_name().unwrap().to_string_lossy().into_owned();
    let ours = dir.join(format!(".{jname}.hotpatch-write-999999-0.tmp"));
    let live = dir.join(format!(".{jname}.hotpatch-write-1-1.tmp"));
    for p in [std::path::Path::new(&tmp), &ours, &live] {
        std::fs::write(p, b"partial").unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            .unwrap();
    }
    let held = std::fs::File::open(&live).unwrap();
    held.lock().unwrap();
    let r = e.open(&path, Mode::Staged).unwrap();
    assert!(e.region_info(r).unwrap().recovered.is_none());
    assert!(
        !std::path::Path::new(&tmp).exists() && !ours.exists(),
        "the incomplete temporary journals are removed"
    );
    assert!(live.exists(), "a live writer's temporary journal is not");
}

#[test]
fn aborting_a_group_into_a_range_locked_since_is_refused_not_a_crash() {
    let dir = scratch("abort-locked");
    let (path, data) = data_file(&dir, "m.bin", 64 << 10, 47);
    let e = Engine::new();
    let r = e.open(&path, Mode::Staged).unwrap();
    let g = e.begin_group(origin());
    e.memory().fill(r, 8192, 8192, &[1]).unwrap();
    // Lock with page protection while the group is open, then abort: the revert would write
    // into read-only pages; it must be refused with an error instead of faulting.
    let id = e.protect(r, 8192, 8192, "locked meanwhile", true).unwrap();
    assert!(
        e.protections()[0].pages.is_some(),
        "the lock covers whole pages"
    );
    let err = g.abort().unwrap_err();
    assert!(matches!(err, EngineError::Protected { .. }), "{err}");
    assert_eq!(
        e.read(r, 8192, 4).unwrap(),
        vec![1; 4],
        "the changes were kept"
    );
    assert_eq!(
        e.history().len(),
        1,
        "and recorded as the group's undo step"
    );
    e.unprotect(id).unwrap();
    e.undo().unwrap();
    assert_eq!(e.read(r, 0, 64 << 10).unwrap(), data);
}

/// The permissions (e.g. "r--") of the mapping holding `addr`, from /proc/self/maps.
fn page_perms(addr: u64) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        let (range, rest) = l.split_once(' ')?;
        let (a, b) = range.split_once('-')?;
        let (a, b) = (
            u64::from_str_radix(a, 16).ok()?,
            u64::from_str_radix(b, 16).ok()?,
        );
        (a <= addr && addr < b).then(|| rest[..3].to_string())
    })
}

#[test]
fn undo_through_reverts_an_entry_and_everything_after_it() {
    let dir = scratch("undo_through");
    let (path, data) = data_file(&dir, "m.bin", 1 << 16, 3);
    let e = Engine::new();
    let r = e.open(&path, Mode::Staged).unwrap();
    let m = e.memory();
    let a = m.write(r, 100, &[1; 8]).unwrap().change.unwrap();
    let b = m.write(r, 200, &[2; 8]).unwrap().change.unwrap();
    let c = m.write(r, 300, &[3; 8]).unwrap().change.unwrap();
    assert!(e.undo_through(999).is_err(), "an unknown id is refused");
    assert_eq!(
        e.history().len(),
        3,
        "a refused undo_through changes nothing"
    );
    assert_eq!(e.undo_through(b).unwrap(), 2, "c then b");
    assert_eq!(
        e.history().iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![a],
        "only the entry before b is left"
    );
    assert_eq!(m.read(r, 100, 8).unwrap(), vec![1; 8], "a stays");
    assert_eq!(m.read(r, 200, 8).unwrap(), data[200..208].to_vec());
    assert_eq!(m.read(r, 300, 8).unwrap(), data[300..308].to_vec());
    assert!(
        e.undo_through(c).is_err(),
        "an entry already undone is not in the history"
    );
    e.redo().unwrap();
    assert_eq!(m.read(r, 200, 8).unwrap(), vec![2; 8], "b can be redone");
}
