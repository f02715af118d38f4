//! CPU time of a process, from `/proc/<pid>/stat` (utime + stime, all threads).

use std::time::Duration;

/// Clock ticks per second of `/proc` times.
#[allow(unsafe_code)]
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// utime + stime in clock ticks, from the text of `/proc/<pid>/stat`. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after the last ')'.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After the name: state is field 3, utime 14 and stime 15 → indexes 11 and 12 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Total CPU time the process `pid` has used.
pub fn process_cpu(pid: u32) -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| anyhow::anyhow!("cannot read /proc/{pid}/stat: {e}"))?;
    let ticks = parse_stat_ticks(&text)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/{pid}/stat format"))?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second() as f64,
    ))
}

/// CPU time of this process.
pub fn own_cpu() -> anyhow::Result<Duration> {
    process_cpu(std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_awkward_names() {
        let line = "1234 (meeting (svc) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(line), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn reads_our_own_cpu_time() {
        let before = own_cpu().expect("own cpu");
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = own_cpu().expect("own cpu");
        assert!(after > before, "{before:?} → {after:?}");
    }
}
