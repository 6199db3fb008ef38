//! The shared atomic writer on real files: mode and owner kept, a failed write leaves the old
//! file and no temporary, leftovers of killed writers are removed and a live writer's never.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hotpatch_testkit::tempdir;

fn age(path: &Path, secs: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

fn temps(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("hotpatch-"))
        .collect();
    v.sort();
    v
}

#[cfg(unix)]
#[test]
fn a_replaced_file_keeps_its_mode_and_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempdir();
    for mode in [0o644, 0o600, 0o640, 0o755] {
        let p = dir.path().join(format!("m{mode:o}.gguf"));
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        hotpatch_atomic::write(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let got = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(
            got, mode,
            "mode {mode:o} kept (a server of another user keeps reading)"
        );
    }
    // The owner: only a privileged user may give a file to someone else; where this process
    // can, the replaced file keeps the other owner.
    let p = dir.path().join("owned.gguf");
    std::fs::write(&p, b"old").unwrap();
    if std::os::unix::fs::chown(&p, Some(4242), Some(4242)).is_ok() {
        hotpatch_atomic::write(&p, b"new").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (4242, 4242), "owner and group kept");
    }
    // A new file gets the mode a plain create gives, not a private 0600.
    let fresh = dir.path().join("fresh.gguf");
    hotpatch_atomic::write(&fresh, b"x").unwrap();
    let plain = dir.path().join("plain");
    File::create(&plain).unwrap();
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
        std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777,
        "same mode as File::create"
    );
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temporary() {
    let dir = tempdir();
    let p = dir.path().join("m.gguf");
    std::fs::write(&p, b"old").unwrap();
    let r: Result<(), std::io::Error> = hotpatch_atomic::write_with(&p, |mut f, _| {
        use std::io::Write;
        f.write_all(b"half")?;
        Err(std::io::Error::other("canceled"))
    });
    assert!(r.is_err());
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
    assert_eq!(temps(dir.path()), Vec::<String>::new(), "no leftover");
}

#[test]
fn leftovers_of_dead_writers_go_and_a_live_writers_temp_stays() {
    let dir = tempdir();
    let d = dir.path();
    let dest = d.join("model.gguf");
    std::fs::write(&dest, b"model").unwrap();
    // Left by killed writers: this build's name, the old GGUF writer's, the old Save As's.
    let dead = [
        ".model.gguf.hotpatch-write-999999-0.tmp",
        ".hotpatch-write-AbC123.tmp",
        ".model.gguf.hotpatch-tmp-999999",
    ];
    for n in dead {
        std::fs::write(d.join(n), vec![0u8; 4096]).unwrap();
        age(&d.join(n), 3600);
    }
    // A live writer of the same file: holds its lock (even if idle for long).
    let live = d.join(".model.gguf.hotpatch-write-1-7.tmp");
    let held = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&live)
        .unwrap();
    held.lock().unwrap();
    age(&live, 3600);
    // Just created by a writer about to lock it.
    let fresh = d.join(".model.gguf.hotpatch-write-1-8.tmp");
    std::fs::write(&fresh, b"").unwrap();
    // Another model's temporary and unrelated files are never touched.
    let other = d.join(".other.gguf.hotpatch-write-999999-0.tmp");
    std::fs::write(&other, b"").unwrap();
    age(&other, 3600);
    std::fs::write(d.join("notes.tmp"), b"").unwrap();

    let mut removed: Vec<String> = hotpatch_atomic::clean_stale(&dest)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    removed.sort();
    let mut want: Vec<String> = dead.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(removed, want);
    assert!(live.exists(), "a live writer's temporary stays");
    assert!(fresh.exists(), "a temporary written a moment ago stays");
    assert!(other.exists() && d.join("notes.tmp").exists());
    drop(held);
    // Once its writer is gone, the next write cleans it up.
    hotpatch_atomic::write(&dest, b"new").unwrap();
    assert!(
        !live.exists(),
        "the dead writer's temporary is gone after the next save"
    );
}

#[cfg(unix)]
#[test]
fn a_writer_killed_mid_write_leaves_a_temp_that_the_next_write_removes() {
    // A real crash: a child process (this test binary, re-run as a writer) is SIGKILLed while
    // it writes; the target is untouched, its temporary is left; the next write removes it.
    let dir = tempdir();
    let dest = dir.path().join("m.gguf");
    std::fs::write(&dest, b"old").unwrap();
    if let Ok(path) = std::env::var("HOTPATCH_ATOMIC_CHILD") {
        let _: Result<(), hotpatch_atomic::Error> =
            hotpatch_atomic::write_with(Path::new(&path), |mut f, _| {
                use std::io::Write;
                let _ = f.write_all(&[1u8; 4096]);
                std::thread::sleep(Duration::from_secs(60));
                Ok(())
            });
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_writer_killed_mid_write_leaves_a_temp_that_the_next_write_removes",
            "--nocapture",
        ])
        .env("HOTPATCH_ATOMIC_CHILD", &dest)
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while temps(dir.path()).is_empty() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let left = temps(dir.path());
    assert_eq!(
        left.len(),
        1,
        "the killed writer left its temporary: {left:?}"
    );
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        b"old",
        "the target is untouched"
    );
    // Its lock died with it; once idle for STALE_AFTER the next write removes it.
    std::thread::sleep(hotpatch_atomic::STALE_AFTER + Duration::from_millis(200));
    hotpatch_atomic::write(&dest, b"new").unwrap();
    assert_eq!(temps(dir.path()), Vec::<String>::new());
    assert_eq!(std::fs::read(&dest).unwrap(), b"new");
}
