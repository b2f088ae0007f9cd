//! Host checks of /health: free space of the data directory's file system (statvfs) and used
//! memory (sysinfo).

use serde_json::{Value, json};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;
use sysinfo::{MemoryRefreshKind, RefreshKind, System};

use super::{Status, rising};
use crate::config::HealthConfig;

/// Free and total bytes of the file system holding `path` (for an unprivileged writer).
pub fn disk_space(path: &Path) -> std::io::Result<(u64, u64)> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: c_path is a valid NUL-terminated string and st points to writable memory of the
    // right type; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct (and it was zeroed before anyway).
    let st = unsafe { st.assume_init() };
    // The field widths differ between targets (c_ulong, fsblkcnt_t); widen them all to u64.
    #[allow(clippy::useless_conversion)]
    let (frsize, avail, blocks) = (
        u64::from(st.f_frsize).max(1),
        u64::from(st.f_bavail),
        u64::from(st.f_blocks),
    );
    Ok((avail.saturating_mul(frsize), blocks.saturating_mul(frsize)))
}

/// The data directory, or its closest existing parent (the store creates it on first write).
fn existing_ancestor(path: &Path) -> &Path {
    path.ancestors().find(|p| p.exists()).unwrap_or(path)
}

pub fn disk_check(data_dir: &Path, limits: &HealthConfig) -> (Status, Value) {
    let path = existing_ancestor(data_dir);
    match disk_space(path) {
        Ok((free, total)) if total > 0 => {
            let free_percent = free as f64 * 100.0 / total as f64;
            // Less free space is worse: compare the used share against the mirrored limits.
            let status = rising(
                100.0 - free_percent,
                100.0 - limits.disk_free_warning_percent,
                100.0 - limits.disk_free_critical_percent,
            );
            super::check(
                status,
                json!({"path": data_dir, "free_percent": free_percent, "free_bytes": free, "total_bytes": total}),
            )
        }
        Ok(_) => super::check(
            Status::Warning,
            json!({"path": data_dir, "error": "file system reports no size"}),
        ),
        Err(e) => super::check(
            Status::Warning,
            json!({"path": data_dir, "error": e.to_string()}),
        ),
    }
}

/// Keeps one sysinfo handle (refreshing memory only).
pub struct SystemProbe {
    /// The error text when sysinfo could not initialise on this host.
    system: Result<Mutex<System>, String>,
}

impl Default for SystemProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemProbe {
    pub fn new() -> Self {
        let kind = RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram());
        let system = System::new_with_specifics(kind)
            .map(Mutex::new)
            .map_err(|e| e.to_string());
        SystemProbe { system }
    }

    /// (used, total) bytes of RAM now.
    pub fn memory(&self) -> Result<(u64, u64), String> {
        let system = self.system.as_ref().map_err(Clone::clone)?;
        let mut sys = system.lock().unwrap_or_else(|p| p.into_inner());
        sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        Ok((sys.used_memory(), sys.total_memory()))
    }

    pub fn memory_check(&self, limits: &HealthConfig) -> (Status, Value) {
        let (used, total) = match self.memory() {
            Ok((_, 0)) => {
                return super::check(Status::Warning, json!({"error": "memory size unavailable"}));
            }
            Ok(figures) => figures,
            Err(e) => return super::check(Status::Warning, json!({"error": e})),
        };
        let used_percent = used as f64 * 100.0 / total as f64;
        let status = rising(
            used_percent,
            limits.memory_used_warning_percent,
            limits.memory_used_critical_percent,
        );
        super::check(
            status,
            json!({"used_percent": used_percent, "used_bytes": used, "total_bytes": total}),
        )
    }
}
