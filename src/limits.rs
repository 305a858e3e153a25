//! What the machine can give: the memory available to this process, for refusing work that
//! would not fit before it is attempted, and stack for recursion as deep as a model's
//! expressions.

/// The environment variable that overrides the limit: a size (`512M`, `8G`, bytes) or `none`.
pub const ENV: &str = "VI_MEMORY_LIMIT";

/// Bytes this process can still allocate: the kernel's MemAvailable, lowered by a cgroup's
/// limit (containers) and by `VI_MEMORY_LIMIT`; `None` when unknown or switched off.
pub fn available_bytes() -> Option<u64> {
    let over = std::env::var(ENV).ok();
    if let Some(v) = over.as_deref() {
        if v.trim().eq_ignore_ascii_case("none") {
            return None;
        }
    }
    let told = over.as_deref().and_then(parse_size);
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let cgroup = cgroup_room();
    [told, meminfo, cgroup].into_iter().flatten().min()
}

/// Room left under a cgroup v2 memory limit.
fn cgroup_room() -> Option<u64> {
    let read = |f: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{f}")).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?;
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// `512M`, `8G`, `1.5GiB`, `1000000` (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num.parse().ok()?;
    let scale = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some((x * scale) as u64)
}

/// Bytes for people: `1.5 GiB`.
pub fn human(bytes: f64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = bytes;
    let mut k = 0;
    while x >= 1024.0 && k + 1 < units.len() {
        x /= 1024.0;
        k += 1;
    }
    if k == 0 {
        format!("{x:.0} bytes")
    } else if x >= 1e4 {
        format!("{x:.3e} {}", units[k])
    } else {
        format!("{x:.1} {}", units[k])
    }
}

/// Run `f` with room for deep recursion: the recursive phases (checking, lowering, constant
/// folding, printing, evaluation) call this at each level, and when less than a red zone of
/// stack is left it continues on a fresh segment allocated on the heap. So an expression nested
/// 100,000 deep is as good as a shallow one, bounded by memory rather than by the thread's stack.
#[inline]
pub fn deep<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(128 * 1024, 4 * 1024 * 1024, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print() {
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}
