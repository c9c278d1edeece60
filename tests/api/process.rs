//! The real `joinform` binary in a process of its own, as an operator runs it: a
//! command run to its end ([`Joinform::output`]), or a server on free ports with its
//! log captured, stopped by a signal ([`Joinform::start`]).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a server may take to log that its listeners are ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `joinform` to be run: its arguments, folder, environment and standard input. The
/// `JOINFORM_*` variables of whoever runs the tests are never passed on.
pub struct Joinform {
    command: Command,
    stdin: Option<String>,
}

impl Joinform {
    /// `joinform` with no arguments yet.
    pub fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_joinform"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("JOINFORM_")) {
            command.env_remove(key);
        }
        Self {
            command,
            stdin: None,
        }
    }

    /// `joinform serve` in `dir` with one worker: with no configuration file there, it
    /// runs on the built-in defaults, its database under `dir/data`.
    pub fn serve(dir: &Path) -> Self {
        Self::new()
            .current_dir(dir)
            .arg("serve")
            .env("JOINFORM_SERVER__WORKERS", "1")
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args(mut self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Self {
        self.command.args(args);
        self
    }

    /// `--config FILE`, where the arguments are so far.
    pub fn config(self, file: &Path) -> Self {
        self.arg("--config").arg(file)
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        self.command.envs(vars.iter().copied());
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Text for its standard input (otherwise it reads an empty one).
    pub fn stdin(mut self, text: Option<&str>) -> Self {
        self.stdin = text.map(str::to_owned);
        self
    }

    /// Runs it to its end and captures what it wrote.
    pub fn output(mut self) -> Output {
        let Some(text) = self.stdin else {
            return self.command.output().unwrap();
        };
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// [`Joinform::output`] on a blocking thread, so a server in this process can go on
    /// answering meanwhile.
    pub async fn output_async(self) -> Output {
        tokio::task::spawn_blocking(move || self.output())
            .await
            .unwrap()
    }

    /// Starts it as a server and waits until both listeners are ready, on ports it
    /// chose itself (unless the environment given names an address). Its standard
    /// error is captured; it is killed when the returned process is dropped.
    pub fn start(mut self) -> ServerProcess {
        for listener in ["JOINFORM_SERVER__LISTEN", "JOINFORM_ADMIN__LISTEN"] {
            let named = self
                .command
                .get_envs()
                .any(|(key, value)| key == listener && value.is_some());
            if !named {
                self.command.env(listener, "127.0.0.1:0");
            }
        }
        let mut child = self
            .command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(ready) = listener_ready(&line) {
                    let _ = port_tx.send(ready);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (mut port, mut admin_port) = (None, None);
        while port.is_none() || admin_port.is_none() {
            match port_rx.recv_timeout(START_TIMEOUT) {
                Ok((Listener::Public, found)) => port = Some(found),
                Ok((Listener::Admin, found)) => admin_port = Some(found),
                Ok((Listener::None, _)) => {}
                Err(_) => panic!("the server did not start: {}", log.lock().unwrap()),
            }
        }
        ServerProcess {
            child,
            port: port.unwrap_or_default(),
            admin_port: admin_port.unwrap_or_default(),
            log,
        }
    }
}

/// Which listener a start-up log line announces.
pub enum Listener {
    Public,
    Admin,
    None,
}

/// The port a log line names (`port=N` in text, `"port": N` in JSON), and which
/// listener it announces.
pub fn listener_ready(line: &str) -> Option<(Listener, u16)> {
    let listener = if line.contains("joinform is listening") {
        Listener::Public
    } else if line.contains("admin listener ready") {
        Listener::Admin
    } else {
        Listener::None
    };
    let text_port = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("port="))
        .and_then(|port| port.parse::<u16>().ok());
    let json_port = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|event| event["port"].as_u64())
        .and_then(|port| u16::try_from(port).ok());
    text_port.or(json_port).map(|port| (listener, port))
}

/// A running `joinform` server (see [`Joinform::start`]). Killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub port: u16,
    pub admin_port: u16,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends a signal by name (TERM, KILL, INT), by the system call rather than the
    /// `kill` program, which a slim system may lack.
    pub fn signal(&self, name: &str) {
        use rustix::process::{Pid, Signal, kill_process};
        let signal = match name {
            "TERM" => Signal::TERM,
            "INT" => Signal::INT,
            "KILL" => Signal::KILL,
            other => panic!("no signal {other} in the tests"),
        };
        kill_process(Pid::from_child(&self.child), signal).unwrap();
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Sends the signal `name` and waits, at most `limit`, for the server to exit.
    pub async fn stop(&mut self, name: &str, limit: Duration) -> ExitStatus {
        self.signal(name);
        self.wait_exit(limit)
            .await
            .unwrap_or_else(|| panic!("the server exits after SIG{name}"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
