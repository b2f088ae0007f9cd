//! Effective capabilities of this process (capget).

/// Capabilities live capture needs.
pub const NEEDED: &[(u32, &str)] = &[(39, "CAP_BPF"), (12, "CAP_NET_ADMIN"), (38, "CAP_PERFMON")];
const CAP_SYS_ADMIN: u32 = 21;

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
        version: 0x2008_0522,
        pid: 0,
    }; // _LINUX_CAPABILITY_VERSION_3
    let mut data = [Data::default(); 2];
    // SAFETY: header and two data slots as capget(2) version 3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    Some(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
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
