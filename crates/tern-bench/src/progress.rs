//! A one-line progress bar for `tern-bench run` on a terminal.
//!
//! A whole comparison takes minutes; the bar shows which system and step is running and how far
//! the run is. It is drawn on stderr only when stderr is a terminal (logs and CI output keep the
//! plain per-step lines), redraws five times a second from its own thread, and erases itself
//! when dropped, so the per-step result lines printed after it stay clean.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Width of the bar itself, in cells.
const BAR_CELLS: usize = 30;

/// One line: `label [#####.....] step 2/4  1.5/3.0 s`. `step` counts from 1; progress over the
/// whole run is the finished steps plus the fraction of this one, clamped to the step length
/// (a step's grace period past its nominal length shows as a full step, not as overflow).
pub fn render(
    label: &str,
    step: usize,
    steps: usize,
    elapsed: Duration,
    step_len: Duration,
) -> String {
    let steps = steps.max(1);
    let step = step.clamp(1, steps);
    let frac = if step_len.is_zero() {
        1.0
    } else {
        (elapsed.as_secs_f64() / step_len.as_secs_f64()).min(1.0)
    };
    let done = ((step - 1) as f64 + frac) / steps as f64;
    let filled = ((done * BAR_CELLS as f64).round() as usize).min(BAR_CELLS);
    format!(
        "{label} [{}{}] step {step}/{steps} {:>5.1}/{:.1} s",
        "#".repeat(filled),
        ".".repeat(BAR_CELLS - filled),
        elapsed.as_secs_f64().min(step_len.as_secs_f64()),
        step_len.as_secs_f64()
    )
}

/// The bar for one step, drawn while it lives.
#[derive(Debug)]
pub struct ProgressBar {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressBar {
    /// Starts drawing, or returns `None` when stderr is not a terminal.
    pub fn start(label: String, step: usize, steps: usize, step_len: Duration) -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let t0 = Instant::now();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let line = render(&label, step, steps, t0.elapsed(), step_len);
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r{line}\x1b[K");
                    let _ = err.flush();
                    drop(err);
                    std::thread::sleep(Duration::from_millis(200));
                }
                let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
            })
            .ok()?;
        Some(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(line: &str) -> (usize, usize) {
        let bar = &line[line.find('[').unwrap() + 1..line.find(']').unwrap()];
        (bar.matches('#').count(), bar.matches('.').count())
    }

    #[test]
    fn progress_counts_finished_steps_and_the_current_fraction() {
        let s = Duration::from_secs(4);
        assert_eq!(cells(&render("k", 1, 2, Duration::ZERO, s)), (0, BAR_CELLS));
        // Half of the first of two steps: a quarter of the run.
        let (f, e) = cells(&render("k", 1, 2, Duration::from_secs(2), s));
        assert_eq!((f, e), (8, BAR_CELLS - 8));
        // Start of the second step: half.
        assert_eq!(
            cells(&render("k", 2, 2, Duration::ZERO, s)).0,
            BAR_CELLS / 2
        );
        // End of the last step: full.
        assert_eq!(cells(&render("k", 2, 2, s, s)), (BAR_CELLS, 0));
    }

    #[test]
    fn grace_past_the_step_and_odd_arguments_stay_in_bounds() {
        let s = Duration::from_secs(3);
        let line = render("ternd", 3, 3, Duration::from_secs(10), s);
        assert_eq!(cells(&line), (BAR_CELLS, 0));
        assert!(line.ends_with("step 3/3   3.0/3.0 s"), "{line}");
        // Zero steps or a zero-length step must not divide by zero or overflow the bar.
        assert_eq!(
            cells(&render("x", 0, 0, Duration::ZERO, Duration::ZERO)),
            (BAR_CELLS, 0)
        );
        assert!(render("x", 9, 2, Duration::ZERO, s).contains("step 2/2"));
    }
}
