//! The filesystem layer's locks against real other processes: the `fcntl` record lock the
//! users phase takes on `/etc/.pwd.lock` must exclude what glibc's and shadow-utils'
//! `lckpwdf` take there (a process-associated `F_SETLK` write lock over the whole file), and
//! a `flock` must not be mistaken for it. The other process is perl (Debian's perl-base is
//! always installed), taking the lock exactly as `lckpwdf` does.

use std::io::{BufRead as _, BufReader};
use std::os::fd::OwnedFd;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use etcflip::fs::lock::{flock, NotLocked, RecordLock};
use etcflip_e2e::{Scratch, LCKPWDF};

/// A perl holding (or failing to take) the lock; it lets go when dropped.
struct Other {
    child: Child,
    stdin: Option<ChildStdin>,
    said: String,
}

impl Other {
    fn lock(path: &std::path::Path) -> Other {
        let mut child = Command::new("perl")
            .args(["-e", LCKPWDF])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("perl runs");
        let mut said = String::new();
        let out = child.stdout.take().expect("stdout");
        BufReader::new(out).read_line(&mut said).expect("perl says");
        let stdin = child.stdin.take();
        Other {
            child,
            stdin,
            said: said.trim().to_owned(),
        }
    }
}

impl Drop for Other {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn open(path: &std::path::Path) -> OwnedFd {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .expect("open the lock file")
        .into()
}

fn waiting(limit_ms: u64) -> (&'static str, Duration) {
    ("the lock file", Duration::from_millis(limit_ms))
}

/// An empty `.pwd.lock` in a fresh scratch directory (kept alive by the returned `Scratch`).
fn lock_file(test: &str) -> (Scratch, std::path::PathBuf) {
    let s = Scratch::new(test);
    let path = s.dir.join(".pwd.lock");
    std::fs::write(&path, b"").unwrap();
    (s, path)
}

#[test]
fn the_record_lock_and_lckpwdf_exclude_each_other() {
    let (_s, path) = lock_file("record-lock");
    // lckpwdf first: the record lock waits, then gives up.
    let other = Other::lock(&path);
    assert_eq!(other.said, "locked");
    let busy = RecordLock::take(open(&path), waiting(200), &mut || None).unwrap();
    assert_eq!(busy.unwrap_err(), NotLocked::Busy);
    // A flock on the same file does not see it: the reason the record lock exists.
    let f = flock(open(&path), waiting(200), &mut || None).unwrap();
    assert!(f.is_ok(), "flock is taken beside an fcntl lock");
    drop(f);
    drop(other);

    // The record lock first: lckpwdf finds it busy until it is dropped.
    let held = RecordLock::take(open(&path), waiting(1000), &mut || None)
        .unwrap()
        .unwrap();
    assert_eq!(Other::lock(&path).said, "busy");
    // Unlike lckpwdf's own (process-associated) lock, it survives this process opening and
    // closing the same file elsewhere, as any library reading it may.
    drop(std::fs::File::open(&path).unwrap());
    assert_eq!(Other::lock(&path).said, "busy");
    drop(held);
    assert_eq!(Other::lock(&path).said, "locked");
}

#[test]
fn a_wait_for_the_record_lock_ends_when_asked() {
    let (_s, path) = lock_file("record-lock-interrupted");
    let other = Other::lock(&path);
    assert_eq!(other.said, "locked");
    let started = std::time::Instant::now();
    let mut asked = 0;
    let mut interrupted = || {
        asked += 1;
        (asked > 2).then(|| "SIGTERM".to_owned())
    };
    let stopped = RecordLock::take(open(&path), waiting(10_000), &mut interrupted).unwrap();
    assert_eq!(
        stopped.unwrap_err(),
        NotLocked::Interrupted("SIGTERM".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it did not wait out the limit"
    );
}
