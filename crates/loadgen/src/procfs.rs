//! What a process holds, from `/proc/<pid>`: resident memory, open descriptors, threads.
//! The soak compares them at its start and end.

use anyhow::{Context, anyhow};
use serde::Serialize;

/// One look at a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcessFigures {
    pub rss_bytes: u64,
    pub open_fds: u64,
    pub threads: u64,
}

/// `VmRSS` (kB) and `Threads` from the text of `/proc/<pid>/status`.
pub fn parse_status(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")? * 1024, field("Threads:")?))
}

/// RSS, descriptors and threads of `pid` (Linux; needs read access to its `/proc`
/// entry: the same user, or root).
pub fn figures(pid: u32) -> anyhow::Result<ProcessFigures> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let (rss_bytes, threads) =
        parse_status(&status).ok_or_else(|| anyhow!("unexpected /proc/{pid}/status format"))?;
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd"))?
        .count() as u64;
    Ok(ProcessFigures {
        rss_bytes,
        open_fds,
        threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let text = "Name:\tmeeting-service\nVmPeak:\t  9000 kB\nVmRSS:\t   14336 kB\nThreads:\t7\n";
        assert_eq!(parse_status(text), Some((14336 * 1024, 7)));
        assert_eq!(parse_status("Name: x\n"), None);
        assert_eq!(parse_status("VmRSS: lots kB\nThreads: 2\n"), None);
    }

    #[test]
    fn reads_our_own_figures() {
        // Held while we look, so at least one descriptor is open whatever the harness does.
        let _file = std::fs::File::open("/proc/self/status").expect("open a file");
        let f = figures(std::process::id()).expect("own figures");
        assert!(
            f.rss_bytes > 0 && f.threads >= 1 && f.open_fds >= 1,
            "{f:?}"
        );
        assert!(figures(u32::MAX).is_err(), "no such process");
    }
}
