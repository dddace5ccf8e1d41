//! How the process allocates.

/// Limits glibc's allocator to as many arenas as the machine has cores (at least 2), unless
/// `MALLOC_ARENA_MAX` says otherwise. Call before any thread starts.
///
/// glibc gives threads that allocate at the same time arenas of their own, up to 8 per core,
/// and memory freed into one arena is kept for that arena. Tokio moves tasks between worker
/// threads, so a merge buffer allocated on one thread and freed on another left most arenas
/// holding freed pages: `strata standalone` peaked at 942 MB of RSS through a 4.4 GB burst and
/// stayed there, against 582 MB with two arenas and no loss of throughput
/// (`scripts/burst-rss.sh`, `docs/benchmarks.md`, "Memory through a burst").
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let arenas = i32::try_from(cores.max(2)).unwrap_or(i32::MAX);
        set_arena_max(arenas);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max(arenas: i32) {
    // SAFETY: `mallopt` only sets a parameter of the allocator, with a valid option and value;
    // it is called before the runtime starts any thread.
    let accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    if accepted == 0 {
        eprintln!("warning: glibc refused M_ARENA_MAX = {arenas}; memory use may be higher");
    }
}
