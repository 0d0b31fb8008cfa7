//! Helpers shared by the unit tests of this crate's modules.

use std::path::Path;

/// Runs `f` on another thread and fails the test if it has not
/// finished within 10 s (instead of hanging the test run).
pub(crate) fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("blocked for more than 10 s")
}

/// Makes a FIFO at `path`.
pub(crate) fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}
