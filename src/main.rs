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

/// What the last panic said, and where: the command line reports it as a diagnostic.
static PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// A bug in vi must not greet a user with a backtrace: the panic's message is kept for `main`
/// to report as a diagnostic (in the format the user asked for); a panic on another thread,
/// which `main` does not see, is said at once.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = vi::diag::panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let text = format!("{msg}{at}");
        if std::thread::current().name() != Some("main") {
            eprintln!("error: internal error in vi: {text}\nThis is a bug; please report it with the model that caused it.");
        }
        if let Ok(mut p) = PANIC.lock() {
            *p = Some(text);
        }
    }));
}

fn main() -> ExitCode {
    keep_large_buffers();
    quiet_panics();
    match std::panic::catch_unwind(cli::main) {
        Ok(code) => code,
        Err(_) => {
            let text = PANIC.lock().ok().and_then(|mut p| p.take());
            cli::internal_error(text.as_deref().unwrap_or("unknown"))
        }
    }
}
