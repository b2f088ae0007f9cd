//! Effective capabilities of this process (capget).

/// Capabilities live capture needs.
pub const NEEDED: &[(u32, &str)] = &[(39, "CAP_BPF"), (12, "CAP_NET_ADMIN"), (38, "CAP_PERFMON")];
pub const CAP_SYS_ADMIN: u32 = 21;
/// `_LINUX_CAPABILITY_VERSION_3`.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The effective capability bits, or None when capget fails.
pub fn effective() -> Option<u64> {
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and two data slots as capget(2) version 3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    Some(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}

/// Removes `bit` from the calling thread's effective set; threads it starts afterwards inherit
/// that. Tests use it to play a container that was not granted a capability.
#[cfg(test)]
pub(crate) fn drop_effective(bit: u32) {
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and two data slots as capget(2)/capset(2) version 3 expect; pid 0 is
    // the calling thread.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()),
            0
        );
        data[(bit / 32) as usize].effective &= !(1 << (bit % 32));
        assert_eq!(
            libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()),
            0
        );
    }
}

/// Names of the needed capabilities this process lacks (CAP_SYS_ADMIN covers CAP_BPF and
/// CAP_PERFMON).
pub fn missing() -> Vec<&'static str> {
    let Some(eff) = effective() else {
        return NEEDED.iter().map(|(_, n)| *n).collect();
    };
    let has = |bit: u32| eff & (1u64 << bit) != 0;
    NEEDED
        .iter()
        .filter(|(bit, name)| !(has(*bit) || (*name != "CAP_NET_ADMIN" && has(CAP_SYS_ADMIN))))
        .map(|(_, n)| *n)
        .collect()
}
