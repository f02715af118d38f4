//! The process heap as the C allocator (glibc's malloc) sees it, and giving its free
//! memory back to the system.
//!
//! Why this exists: glibc keeps memory that was freed inside its arenas (one per thread
//! that allocated, up to eight per core) for reuse, and returns it to the kernel only
//! from the top of the main heap. A meeting's media engine allocates on its worker
//! threads (packets, each subscriber's retransmission history); when the meeting ends
//! that memory is freed but, without a trim, stays resident: the hardening issue (#12)
//! measured 206 MiB of RSS after a 50-person meeting had ended, of which a few MiB were
//! in use. [`stats`] tells the two apart (`GET /health/process`), and [`trim_when_idle`]
//! hands large amounts of free memory back.
//!
//! Only on Linux with glibc; elsewhere [`stats`] is `None` and trimming does nothing.
//! The two calls into the C library are the crate's only `unsafe` (no maintained crate
//! wraps them); both take no pointers.
#![allow(unsafe_code)]

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// What the allocator holds, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeapStats {
    /// Allocated and not yet freed by the program.
    pub in_use: u64,
    /// Freed by the program but still held by the allocator (resident unless trimmed).
    pub free_held: u64,
}

/// The allocator's counts, summed over its arenas (glibc's `mallinfo2`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn stats() -> Option<HeapStats> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct by value; it only
    // reads the allocator's bookkeeping under its own locks.
    let info = unsafe { libc::mallinfo2() };
    Some(HeapStats {
        // Small allocations (arena chunks) plus large ones (each its own mmap).
        in_use: (info.uordblks + info.hblkhd) as u64,
        free_held: info.fordblks as u64,
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn stats() -> Option<HeapStats> {
    None
}

/// Returns the free memory of every arena to the kernel (glibc's `malloc_trim(0)`).
/// Blocking: it takes each arena's lock in turn and walks its free chunks, milliseconds
/// for hundreds of MiB; call it off the async threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() {
    // SAFETY: malloc_trim only releases pages of free chunks; every allocation stays valid.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

/// Trim once free memory held by the allocator passes this. Below it, reuse by the next
/// meeting is worth more than the pages (and a trim costs the engine's threads a wait
/// on their arena's lock).
pub const TRIM_ABOVE: u64 = 32 * 1024 * 1024;

/// How often to look. `mallinfo2` walks the arenas' bins (microseconds to a millisecond),
/// so this is cheap; a meeting's memory comes back within this time after it ends.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Until `shutdown`: every [`CHECK_EVERY`], trims when more than [`TRIM_ABOVE`] bytes are
/// free but held, and logs what it gave back.
pub async fn trim_when_idle(shutdown: CancellationToken) {
    if stats().is_none() {
        return;
    }
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Some(before) = stats() else { return };
        if before.free_held <= TRIM_ABOVE {
            continue;
        }
        let Ok(after) = tokio::task::spawn_blocking(|| {
            trim();
            stats()
        })
        .await
        else {
            return;
        };
        tracing::debug!(
            free_before_mib = before.free_held >> 20,
            free_after_mib = after.map(|a| a.free_held >> 20),
            in_use_mib = before.in_use >> 20,
            "returned the allocator's free memory to the system"
        );
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Freed memory shows as held, and a trim gives it back to the kernel: RSS drops.
    #[test]
    fn freed_memory_is_held_until_trimmed() {
        let rss = || {
            let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
            let kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .expect("VmRSS in /proc/self/status");
            kib * 1024
        };
        // Many small blocks (below the mmap threshold, so in an arena), touched, then
        // freed except the last, which pins the top of the heap as a live meeting would.
        let mut blocks: Vec<Vec<u8>> = (0..64 * 1024).map(|i| vec![i as u8; 1024]).collect();
        let pin = vec![1u8; 1024];
        let held = rss();
        blocks.clear();
        blocks.shrink_to_fit();
        let s = stats().expect("glibc");
        assert!(s.free_held >= 48 << 20, "{s:?}");
        trim();
        let after = rss();
        assert!(
            after + (32 << 20) < held,
            "RSS {} MiB → {} MiB after the trim",
            held >> 20,
            after >> 20
        );
        drop(pin);
    }
}
