//! The `vinf` binary: the allocator's tunables, a panic hook for people, then the command line
//! ([`cli`]).

mod cli;

use std::process::ExitCode;

/// Training allocates and frees the same large buffers every step. glibc hands buffers above
/// its mmap threshold back to the kernel on free and pays page faults and zeroing to map them
/// again; keeping them in the heap is 10% of a VAE step.
fn keep_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// A bug in vi must not greet a user with a backtrace: say what happened and where to report it.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error in vi: {msg}{at}\nThis is a bug; please report it with the model that caused it.");
    }));
}

fn main() -> ExitCode {
    keep_large_buffers();
    quiet_panics();
    cli::main()
}
