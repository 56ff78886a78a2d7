//! The real `wicket` binary as a child process, its log (stdout and stderr) collected
//! as it runs: for what only a process shows (its log, its descriptor limit).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `wicket`.
pub struct Binary {
    child: std::process::Child,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Binary {
    /// `wicket` on a free port with throwaway dirs in `dir`, a cheap scrypt and `args`.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_limited(dir, args, None)
    }

    /// The same, run with at most `max_files` open descriptors (`ulimit -n`).
    pub fn start_limited(dir: &Path, args: &[&str], max_files: Option<u32>) -> Self {
        let mut command = match max_files {
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_wicket"));
                sh
            }
            None => Command::new(env!("CARGO_BIN_EXE_wicket")),
        };
        if !args.contains(&"--addr") {
            command.args(["--addr", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(["--scrypt-log-n", "4"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--sessions-dir")
            .arg(dir.join("sessions"))
            .arg("--static-dir")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
            .args(args)
            .env("RUST_LOG", "info,wicket=trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line.unwrap());
                    log.push('\n');
                }
            }));
        }
        let mut server = Self {
            child,
            log,
            readers,
            base: String::new(),
        };
        let text = server.wait_for_log("listening on http://", Duration::from_secs(10));
        let at = text.find("listening on http://").unwrap() + "listening on ".len();
        server.base = text[at..]
            .split(|c: char| c.is_whitespace() || c == '"')
            .next()
            .unwrap()
            .to_owned();
        server
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far, once it contains `needle` (panics after `patience`).
    pub fn wait_for_log(&self, needle: &str, patience: Duration) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let text = self.log.lock().unwrap().clone();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised name; utime and stime are the 14th and 15th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // Linux reports in USER_HZ, 100 on every architecture Debian builds for.
        Duration::from_millis(ticks * 10)
    }

    /// Stops the server (SIGTERM) and returns everything it logged.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap();
        // The pipes close with the process: the readers end once they have read it all.
        for reader in std::mem::take(&mut self.readers) {
            reader.join().unwrap();
        }
        self.log.lock().unwrap().clone()
    }
}

/// A test that fails before `stop` still stops the server.
impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
