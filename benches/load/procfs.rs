//! CPU time and resident memory, from /proc.

use std::collections::BTreeMap;

use anyhow::Context;

/// Linux reports CPU time in /proc in units of USER_HZ, which is 100 on every
/// mainstream architecture.
pub(crate) const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Resident memory of a process, in KiB.
pub(crate) struct Memory {
    peak_kib: u64,
    current_kib: u64,
}

impl Memory {
    pub(crate) fn of(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Self {
            peak_kib: field("VmHWM:")?,
            current_kib: field("VmRSS:")?,
        })
    }

    pub(crate) fn peak_mb(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }

    pub(crate) fn current_mb(&self) -> f64 {
        self.current_kib as f64 / 1024.0
    }
}

/// CPU time used so far by each thread of a process: (thread id, name) → ticks.
pub(crate) type ThreadTimes = BTreeMap<(u32, String), u64>;

pub(crate) fn thread_times(pid: u32) -> ThreadTimes {
    let mut times = ThreadTimes::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return times;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((tid, name, ticks)) = parse_stat(&stat) {
            times.insert((tid, name), ticks);
        }
    }
    times
}

/// Thread id, name and user+system ticks from a /proc/.../stat line. The name is in
/// parentheses and may itself hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(u32, String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let tid = stat[..open].trim().parse().ok()?;
    let name = stat[open + 1..close].to_owned();
    // After the name: state is field 3, utime field 14 and stime field 15.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((tid, name, utime + stime))
}

/// CPU ticks per thread name between two samples, with the number of threads of that
/// name (the HTTP workers share one).
pub(crate) type CpuByName = BTreeMap<String, (usize, u64)>;

pub(crate) fn cpu_by_thread_name(before: &ThreadTimes, after: &ThreadTimes) -> CpuByName {
    let mut by_name = CpuByName::new();
    for ((tid, name), ticks) in after {
        let start = before.get(&(*tid, name.clone())).copied().unwrap_or(0);
        let entry = by_name.entry(name.clone()).or_default();
        entry.0 += 1;
        entry.1 += ticks.saturating_sub(start);
    }
    by_name
}

pub(crate) fn total_ticks(times: &ThreadTimes) -> u64 {
    times.values().sum()
}

/// All cores together, in ticks, from the first line of /proc/stat.
#[derive(Default)]
pub(crate) struct MachineCpu {
    /// Ticks spent running anything (user, system, interrupts).
    busy: u64,
    /// Ticks the hypervisor gave to someone else.
    steal: u64,
    /// Ticks idle or waiting for I/O.
    idle: u64,
}

impl MachineCpu {
    pub(crate) fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        let at = |index: usize| ticks.get(index).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        Self {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            steal: at(7),
        }
    }

    pub(crate) fn add(&mut self, other: &Self) {
        self.busy += other.busy;
        self.steal += other.steal;
        self.idle += other.idle;
    }

    pub(crate) fn since(&self, before: &Self) -> Self {
        Self {
            busy: self.busy.saturating_sub(before.busy),
            steal: self.steal.saturating_sub(before.steal),
            idle: self.idle.saturating_sub(before.idle),
        }
    }

    /// Share of the machine's CPU time that was busy, stolen, idle.
    pub(crate) fn shares(&self) -> (f64, f64, f64) {
        let total = (self.busy + self.steal + self.idle).max(1) as f64;
        (
            self.busy as f64 / total,
            self.steal as f64 / total,
            self.idle as f64 / total,
        )
    }
}
