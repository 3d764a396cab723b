//! tcpdump on a lab interface, with bounded waits for start-up and for the frames a test expects.

use crate::{Lab, Side};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tern_wire::pcap::{PcapError, PcapReader};

/// A running capture; `Drop` stops tcpdump.
#[derive(Debug)]
pub struct Capture {
    child: Option<Child>,
    path: PathBuf,
}

impl Capture {
    /// Starts `tcpdump -w path` on `side`'s lab interface, returning once it is capturing.
    pub fn start(lab: &Lab, side: Side, path: &Path) -> Capture {
        let mut child = lab
            .command(side, "tcpdump")
            // -U: write each packet as it arrives so the file can be read while capturing.
            .args(["-i", side.interface(), "-n", "-U", "-s", "0", "-w"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start tcpdump: {e} (scripts/bootstrap.sh installs it)")
            });
        // tcpdump says "listening on ..." once its socket is bound; wait for that line.
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tcpdump did not start: {other:?}");
            }
        }
        // Keep draining stderr so tcpdump never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Capture {
            child: Some(child),
            path: path.to_owned(),
        }
    }

    /// The frames captured so far.
    pub fn frames(&self) -> Result<Vec<Vec<u8>>, PcapError> {
        let bytes = std::fs::read(&self.path).unwrap_or_default();
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        PcapReader::new(&bytes)?
            .map(|r| r.map(|rec| rec.data.to_vec()))
            // The last record may still be in the middle of being written.
            .take_while(|r| *r != Err(PcapError::Truncated))
            .collect()
    }

    /// Polls the capture until `done` accepts its frames or `limit` passes; returns the frames
    /// either way so the caller's assertions say what was missing.
    pub fn wait_for(&self, limit: Duration, done: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
        let start = Instant::now();
        loop {
            let frames = self.frames().expect("tcpdump writes valid pcap");
            if done(&frames) || start.elapsed() > limit {
                return frames;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops tcpdump and returns the path of the capture file.
    pub fn stop(mut self) -> PathBuf {
        self.kill();
        self.path.clone()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets tcpdump flush; it is our own child, ended by its PID.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.kill();
    }
}
