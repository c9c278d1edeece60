//! The load generator: keep-alive connections posting unique submissions, and what it
//! counts (answers, latency, CPU).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::procfs::{
    CLOCK_TICKS_PER_SECOND, CpuByName, MachineCpu, cpu_by_thread_name, thread_times, total_ticks,
};
use crate::servers::Server;

/// What one server answered.
pub(crate) struct LoadReport {
    /// Seconds recorded (warm-up excluded).
    pub(crate) seconds: f64,
    /// Latency of expected answers (201) to requests sent in the recorded time, in
    /// microseconds.
    pub(crate) histogram: Histogram<u64>,
    /// Expected answers (201) to requests sent in the recorded time.
    pub(crate) created: u64,
    /// Expected answers in warm-up and recorded time together.
    pub(crate) created_total: u64,
    /// Everything that was not the expected answer, by kind ("status 503", "io: ...").
    pub(crate) errors: BTreeMap<String, u64>,
    /// CPU ticks in the recorded time: the server's, by thread name.
    pub(crate) server_cpu: CpuByName,
    /// CPU ticks in the recorded time: the server's, all threads.
    pub(crate) server_ticks: u64,
    /// CPU ticks in the recorded time: this load client's.
    pub(crate) client_ticks: u64,
    /// The whole machine in the recorded time, from /proc/stat.
    pub(crate) machine: MachineCpu,
}

impl LoadReport {
    fn new(seconds: f64) -> Self {
        Self {
            seconds,
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| unreachable!("constant, valid bounds")),
            created: 0,
            created_total: 0,
            errors: BTreeMap::new(),
            server_cpu: CpuByName::new(),
            server_ticks: 0,
            client_ticks: 0,
            machine: MachineCpu::default(),
        }
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        self.seconds += other.seconds;
        self.histogram
            .add(&other.histogram)
            .unwrap_or_else(|_| unreachable!("histograms with the same bounds always add up"));
        self.created += other.created;
        self.created_total += other.created_total;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
        for (name, (threads, ticks)) in &other.server_cpu {
            let entry = self.server_cpu.entry(name.clone()).or_default();
            entry.0 = entry.0.max(*threads);
            entry.1 += ticks;
        }
        self.server_ticks += other.server_ticks;
        self.client_ticks += other.client_ticks;
        self.machine.add(&other.machine);
    }

    /// Average cores busy over the recorded time, for a number of ticks.
    pub(crate) fn cores(&self, ticks: u64) -> f64 {
        ticks as f64 / CLOCK_TICKS_PER_SECOND / self.seconds
    }

    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub(crate) fn per_second(&self) -> f64 {
        self.created as f64 / self.seconds
    }

    /// Latency at quantile `q`, in milliseconds.
    pub(crate) fn ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}

/// What the connections post, and which answer counts as the expected one. Any other
/// answer is an error. The LoadReport's `created` figures count expected answers.
#[derive(Clone, Copy)]
pub(crate) struct Target {
    path: &'static str,
    expected_status: u16,
}

impl Target {
    /// Valid submissions, each answered 201 once it is committed.
    pub(crate) const JOIN_CREATED: Self = Self {
        path: "/join",
        expected_status: 201,
    };
    /// The same posts against a joinform whose rate limit this client is over, so
    /// every answer should be 429. Such a run counts no rows.
    pub(crate) const JOIN_LIMITED: Self = Self {
        path: "/join",
        expected_status: 429,
    };
}

/// The load generator: one runtime driving every connection.
pub(crate) struct Client<'a> {
    pub(crate) runtime: &'a tokio::runtime::Runtime,
    pub(crate) connections: usize,
    /// Numbers the submissions, so that every one is unique across the run.
    pub(crate) counter: Arc<AtomicU64>,
}

impl Client<'_> {
    /// Loads `server` with `target` from fresh connections for `warmup` (not
    /// recorded), then for `measured`. Every connection finishes its last request
    /// before this returns, so every expected answer is counted.
    pub(crate) fn load(
        &self,
        server: &Server,
        target: Target,
        warmup: Duration,
        measured: Duration,
    ) -> anyhow::Result<LoadReport> {
        let port = server.port;
        let pid = server.pid();
        self.runtime.block_on(async {
            let measure_from = Instant::now() + warmup;
            let window = Window {
                measure_from,
                stop_at: measure_from + measured,
            };
            let connections: Vec<_> = (0..self.connections)
                .map(|_| {
                    let counter = Arc::clone(&self.counter);
                    tokio::spawn(connection(port, target, counter, window))
                })
                .collect();

            tokio::time::sleep_until(window.measure_from.into()).await;
            let server_before = thread_times(pid);
            let client_before = total_ticks(&thread_times(std::process::id()));
            let machine_before = MachineCpu::now();
            tokio::time::sleep_until(window.stop_at.into()).await;
            let machine = MachineCpu::now().since(&machine_before);
            let server_after = thread_times(pid);
            let client_after = total_ticks(&thread_times(std::process::id()));

            let mut report = LoadReport::new(0.0);
            for handle in connections {
                let part = handle
                    .await
                    .with_context(|| format!("a connection to {}", server.name))?;
                report.merge(&part);
            }
            report.seconds = measured.as_secs_f64();
            report.server_cpu = cpu_by_thread_name(&server_before, &server_after);
            report.server_ticks =
                total_ticks(&server_after).saturating_sub(total_ticks(&server_before));
            report.client_ticks = client_after.saturating_sub(client_before);
            report.machine = machine;
            Ok(report)
        })
    }
}

#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    stop_at: Instant,
}

/// One keep-alive connection posting submissions until the window closes. A broken
/// connection is counted as an error and replaced.
async fn connection(
    port: u16,
    target: Target,
    counter: Arc<AtomicU64>,
    window: Window,
) -> LoadReport {
    let mut report = LoadReport::new(0.0);
    let mut request = Vec::with_capacity(512);
    let mut buffer = Vec::with_capacity(1024);
    let mut stream: Option<TcpStream> = None;
    while Instant::now() < window.stop_at {
        let live = match stream.as_mut() {
            Some(live) => live,
            None => match connect(port).await {
                Ok(fresh) => stream.insert(fresh),
                Err(error) => {
                    report.error(format!("connect: {}", error.kind()));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        build_request(
            &mut request,
            target.path,
            counter.fetch_add(1, Ordering::Relaxed),
        );
        let sent = Instant::now();
        let answer = exchange(live, &request, &mut buffer).await;
        let elapsed = sent.elapsed();
        match answer {
            Ok(status) if status == target.expected_status => {
                report.created_total += 1;
                if sent >= window.measure_from {
                    report.created += 1;
                    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                    report.histogram.saturating_record(micros.max(1));
                }
            }
            Ok(status) => report.error(format!("status {status}")),
            Err(error) => {
                report.error(format!("io: {}", error.kind()));
                stream = None;
            }
        }
    }
    report
}

async fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A POST of the form as a browser's fetch would send it, with submission number `n`.
pub(crate) fn build_request(request: &mut Vec<u8>, path: &str, n: u64) {
    let mut body = String::with_capacity(128);
    let _ = write!(
        body,
        "name=Load+Tester+{n}&email=load{n}%40example.org&country=NO&consent=on\
         &city=Oslo&message=Hello"
    );
    request.clear();
    let _ = write!(
        request,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// Writes one request and reads its whole response; returns the status code.
pub(crate) async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    buffer.clear();
    let head_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, buffer).await?;
    };
    let (status, length) = parse_head(&buffer[..head_end])?;
    while buffer.len() < head_end + length {
        read_more(stream, buffer).await?;
    }
    Ok(status)
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 2048];
    let read = stream.read(&mut chunk).await?;
    if read == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

/// Status code and Content-Length (0 when absent) of a response head.
fn parse_head(head: &[u8]) -> std::io::Result<(u16, usize)> {
    let invalid = || std::io::Error::from(std::io::ErrorKind::InvalidData);
    let head = std::str::from_utf8(head).map_err(|_| invalid())?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(invalid)?;
    let mut length = 0;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("transfer-encoding") {
                // Neither server chunks these small bodies; reading one is not worth it.
                return Err(std::io::Error::other("chunked response"));
            }
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| invalid())?;
            }
        }
    }
    Ok((status, length))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
