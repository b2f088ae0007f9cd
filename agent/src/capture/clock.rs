//! Kernel monotonic time -> wall clock.

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns` and of the records.
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC).max(0) as u64
}

/// CLOCK_REALTIME - CLOCK_MONOTONIC in nanoseconds, sampled once at start.
pub fn wall_offset_ns() -> i64 {
    read(libc::CLOCK_REALTIME) - read(libc::CLOCK_MONOTONIC)
}

fn read(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec)
}

#[cfg(test)]
mod tests {
    #[test]
    fn offset_puts_monotonic_time_near_now() {
        let off = super::wall_offset_ns();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as i64;
        let mono = super::read(libc::CLOCK_MONOTONIC);
        assert!((mono + off - now).abs() < 1_000_000_000);
    }
}
