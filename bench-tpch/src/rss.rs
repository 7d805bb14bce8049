//! The process's peak resident memory per query (Linux): the kernel's high-water mark
//! (`VmHWM` in `/proc/self/status`) is reset before a query (`5` into
//! `/proc/self/clear_refs`) and read after it. Elsewhere, or when the kernel refuses the
//! reset, there is no figure rather than a wrong one.

use std::fs;

/// Resets the peak resident memory to the current resident memory; false when the
/// kernel does not support it.
pub fn reset_peak() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak resident memory in KiB since the last [`reset_peak`] (or the start).
pub fn peak_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    parse_hwm(&status)
}

/// `VmHWM` of a `/proc/<pid>/status` text, in KiB.
fn parse_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib = line
        .trim_start_matches("VmHWM:")
        .trim()
        .strip_suffix("kB")?;
    kib.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwm_is_read_from_status_text() {
        let status =
            "Name:\tsluice-tpch\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_hwm(status), Some(12_345));
        assert_eq!(parse_hwm("VmRSS:\t 100 kB\n"), None);
        assert_eq!(parse_hwm("VmHWM:\t lots kB\n"), None);
    }

    /// After a reset the peak follows what the process touches next.
    #[test]
    fn peak_follows_a_large_allocation_after_a_reset() {
        if !cfg!(target_os = "linux") || !reset_peak() {
            return;
        }
        let before = peak_kib().expect("VmHWM");
        let block = vec![1u8; 64 << 20];
        let after = peak_kib().expect("VmHWM");
        assert_eq!(block.iter().map(|&b| u64::from(b)).sum::<u64>(), 64 << 20);
        assert!(after >= before + 60 * 1024, "{before} -> {after} KiB");
    }
}
