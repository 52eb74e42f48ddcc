//! The process's resident memory, for the tests that bound it (each in a binary of its own,
//! so that no other test's allocations move it).

/// The process's resident set (`VmRSS` of `/proc/self/status`), in bytes; `None` off Linux.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
