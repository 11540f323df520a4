//! Running the `mongowire` binary from tests: a watcher left running with its output collected
//! as it comes, and the SIGKILL-and-restart loop that checks `--checkpoint` loses nothing.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use bson::{Timestamp, rawdoc};
use mongowire::driver::Client;
use rand::Rng;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// Longest any one `mongowire` run may take before the test calls it hung.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// `mongowire args...`, with stdout and stderr piped and the child killed when dropped.
pub fn mongowire(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mongowire"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The cluster time of a write made now: a `--start-at-operation-time` from which every later
/// write is seen, so tests write first and watch afterwards, with no race.
pub async fn now(client: &Client) -> String {
    let reply = client
        .database("mwt_cli_clock")
        .run_command(rawdoc! { "insert": "ticks", "documents": [{ "at": bson::DateTime::now() }] })
        .await
        .unwrap();
    let Timestamp { time, increment } = reply.get_timestamp("operationTime").unwrap();
    format!("{time}:{increment}")
}

/// `MONGOWIRE_TEST_SEED`, or a fresh random seed; printed either way so a failure replays.
pub fn seed(what: &str) -> u64 {
    let seed: u64 = std::env::var("MONGOWIRE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("seed {seed} (MONGOWIRE_TEST_SEED={seed} replays {what})");
    seed
}

/// A process's peak resident set so far (`VmHWM`), in KiB; 0 once it has exited.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// A watcher left running, its stdout collected as it comes so it never blocks on a full pipe
/// (unless the test asks it to: [`Watcher::start_unbuffered`]).
pub struct Watcher {
    pub child: Child,
    lines: tokio::sync::mpsc::Receiver<String>,
    stdout: tokio::task::JoinHandle<Vec<u8>>,
}

impl Watcher {
    pub fn start(args: &[&str]) -> Watcher {
        // Room for any output a test produces (tokio's bound is `usize::MAX >> 3`).
        Watcher::spawn(args, usize::MAX >> 4)
    }

    /// A watcher whose lines the test takes one by one: once `backlog` lines wait unread, the
    /// collector stops reading and the pipe fills, so the watcher blocks on stdout like a
    /// consumer whose reader is slow.
    pub fn start_unbuffered(args: &[&str], backlog: usize) -> Watcher {
        Watcher::spawn(args, backlog)
    }

    fn spawn(args: &[&str], backlog: usize) -> Watcher {
        let mut child = mongowire(args).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (sender, lines) = tokio::sync::mpsc::channel(backlog);
        let stdout = tokio::spawn(async move {
            let mut all = Vec::new();
            let mut chunk = [0_u8; 64 * 1024];
            let mut line = Vec::new();
            while let Ok(read) = stdout.read(&mut chunk).await {
                if read == 0 {
                    break;
                }
                all.extend_from_slice(&chunk[..read]);
                for &byte in &chunk[..read] {
                    if byte == b'\n' {
                        let _ = sender.send(String::from_utf8_lossy(&line).into_owned()).await;
                        line.clear();
                    } else {
                        line.push(byte);
                    }
                }
            }
            all
        });
        Watcher { child, lines, stdout }
    }

    /// The next whole line of output.
    pub async fn line(&mut self) -> String {
        self.next_line().await.expect("the watcher is still printing")
    }

    /// The next whole line of output, or `None` once the watcher has ended.
    pub async fn next_line(&mut self) -> Option<String> {
        tokio::time::timeout(RUN_LIMIT, self.lines.recv())
            .await
            .expect("a line in time")
    }

    /// The watcher's peak resident set so far, in KiB (0 once it has exited).
    pub fn peak_rss_kib(&self) -> u64 {
        self.child.id().map_or(0, peak_rss_kib)
    }

    /// Sends `signal`, unless the watcher has already exited.
    pub fn signal(&mut self, signal: i32) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit and returns its status, everything printed, and stderr.
    pub async fn finish(mut self) -> (std::process::ExitStatus, Vec<u8>, String) {
        self.lines.close();
        while self.lines.try_recv().is_ok() {}
        let status = tokio::time::timeout(RUN_LIMIT, self.child.wait())
            .await
            .expect("exit in time")
            .unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        (status, self.stdout.await.unwrap(), stderr)
    }
}

/// What [`kill_and_restart`] saw.
pub struct KillRun {
    /// Every number printed, in order, with the one repeat a kill may cause removed.
    pub seen: Vec<i64>,
    pub kills: u32,
    pub repeats: u32,
    /// Runs that ended by themselves with an error before they were killed.
    pub failed_runs: u32,
    /// The largest peak resident set of any run, sampled just before it was stopped.
    pub peak_rss_kib: u64,
}

/// Runs `mongowire watch ARGS` (which must include `--checkpoint`), killing it with SIGKILL at
/// random moments and starting it again, until `writer_done()` and the numbers `first..=last`
/// have been printed; the final run is stopped with SIGTERM. Each run must continue where the
/// previous one's output ended, repeating at most the one event that was in flight. A run that
/// fails by itself (its error on stderr) is counted and started again.
pub async fn kill_and_restart(
    args: &[&str],
    first: i64,
    last: i64,
    writer_done: impl Fn() -> bool,
    rng: &mut impl Rng,
) -> KillRun {
    let mut run = KillRun {
        seen: Vec::new(),
        kills: 0,
        repeats: 0,
        failed_runs: 0,
        peak_rss_kib: 0,
    };
    loop {
        let previous = run.seen.last().copied();
        let finishing = writer_done();
        if finishing && previous == Some(last) {
            break;
        }
        let mut watcher = Watcher::start(args);
        if finishing {
            // The last run: it prints through the last number and is stopped politely.
            while let Some(line) = watcher.next_line().await {
                let line: Value = serde_json::from_str(&line).unwrap();
                if line["documentKey"]["_id"].as_i64() == Some(last) {
                    break;
                }
            }
        } else {
            tokio::time::sleep(Duration::from_millis(rng.random_range(50..1500))).await;
        }
        run.peak_rss_kib = run.peak_rss_kib.max(watcher.peak_rss_kib());
        watcher.signal(if finishing { 15 } else { 9 });
        let (status, stdout, stderr) = watcher.finish().await;
        let killed = status.signal() == Some(9);
        if killed {
            run.kills += 1;
        } else if !status.success() {
            eprintln!("a watch run failed by itself: {status:?} {stderr}");
            run.failed_runs += 1;
        }
        // A kill can land mid-line; that event was not finished, so it is not counted (and was
        // not checkpointed: the next run prints it again).
        let text = String::from_utf8(stdout).unwrap();
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        let numbers: Vec<i64> = whole
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()["documentKey"]["_id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        if let Some(&start) = numbers.first() {
            let expected = previous.map_or(first, |p| p + 1);
            assert!(
                start == expected || Some(start) == previous,
                "after {previous:?} the next run started at {start}"
            );
            let repeated = Some(start) == previous;
            run.repeats += u32::from(repeated);
            for window in numbers.windows(2) {
                assert_eq!(window[1], window[0] + 1, "within one run");
            }
            run.seen.extend(&numbers[usize::from(repeated)..]);
        }
    }
    run
}
