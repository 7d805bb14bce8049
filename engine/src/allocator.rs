//! Process-wide allocator housekeeping for the programs built on Sluice (`sluice`,
//! `sluice-tpch`): a library never does it on its own.
//!
//! glibc's malloc gives threads up to eight arenas per core. Sluice runs each partition
//! of a query on threads of its own, so the memory a query frees ends up spread over many
//! arenas, and glibc keeps the free pages of each for later. Running the 22 TPC-H queries
//! at SF 10 in one process, that retained memory stacked up to a 1.57 GB peak of resident
//! memory, against 1.24 GB for the largest query alone. Handing free pages back between
//! statements keeps a long-running process at the size of its largest query. (Capping the
//! arenas instead, `M_ARENA_MAX`, also bounds it but made q1 about 12% slower: threads
//! then wait on each other's arena locks.) See `docs/benchmarks.md`.

/// Returns the pages malloc holds free, in every arena, to the operating system (glibc's
/// `malloc_trim`). Call it between statements, not while one runs: the next allocations
/// fault their pages in again. Returns whether any memory was released (always false on
/// other C libraries).
#[allow(unsafe_code)]
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only returns whole free pages of malloc's own heaps to the
        // kernel; it takes malloc's locks and is safe to call from any thread at any time.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Free pages between live blocks go back to the kernel; allocation still works.
    #[test]
    fn free_pages_between_live_blocks_are_released() {
        let mut blocks: Vec<Option<Vec<u8>>> = (0..64u8).map(|i| Some(vec![i; 64 << 10])).collect();
        // Every other block freed: holes malloc cannot give back by shrinking its heap.
        for b in blocks.iter_mut().step_by(2) {
            *b = None;
        }
        let released = release_free_memory();
        assert_eq!(released, cfg!(all(target_os = "linux", target_env = "gnu")));
        let live: usize = blocks.iter().flatten().map(|b| usize::from(b[0])).sum();
        assert_eq!(live, (1..64).step_by(2).sum::<usize>());
        assert_eq!(
            vec![7u8; 1 << 20]
                .iter()
                .map(|&b| usize::from(b))
                .sum::<usize>(),
            7 << 20
        );
    }
}
