//! Reading other processes' /proc entries, under a configurable root. Every read reports why
//! it failed so the scan can count it: the process exited (ENOENT, ESRCH) or the entry is not
//! readable (EACCES, EPERM: without CAP_SYS_PTRACE, /proc/<pid>/ns, fd and exe of other users'
//! processes are not).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Why a /proc read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The process went away between listing and reading.
    Exited,
    /// Permission denied.
    Denied,
    /// Anything else (unexpected content, I/O error).
    Other,
}

fn failure(e: &std::io::Error) -> Failure {
    match e.kind() {
        ErrorKind::NotFound => Failure::Exited,
        ErrorKind::PermissionDenied => Failure::Denied,
        _ if e.raw_os_error() == Some(libc::ESRCH) => Failure::Exited,
        _ => Failure::Other,
    }
}

/// A /proc tree (the host's, mounted where the DaemonSet mounts it, or a test fixture).
#[derive(Clone, Debug)]
pub struct Proc {
    root: PathBuf,
}

impl Proc {
    pub fn new(root: &Path) -> Proc {
        Proc {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, pid: u32, rel: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(rel)
    }

    /// Every numeric entry (process id), ascending.
    pub fn pids(&self) -> Result<Vec<u32>, std::io::Error> {
        let mut pids: Vec<u32> = std::fs::read_dir(&self.root)?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// The inode of the process's network namespace (`net:[4026531840]`).
    pub fn netns(&self, pid: u32) -> Result<u64, Failure> {
        let link = std::fs::read_link(self.path(pid, "ns/net")).map_err(|e| failure(&e))?;
        bracketed(&link.to_string_lossy(), "net:[").ok_or(Failure::Other)
    }

    /// The text of a file below /proc/<pid>/.
    pub fn read(&self, pid: u32, rel: &str) -> Result<String, Failure> {
        std::fs::read_to_string(self.path(pid, rel)).map_err(|e| failure(&e))
    }

    /// The socket inodes among the open files of a process.
    pub fn socket_inodes(&self, pid: u32) -> Result<Vec<u64>, Failure> {
        let dir = std::fs::read_dir(self.path(pid, "fd")).map_err(|e| failure(&e))?;
        Ok(dir
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|l| bracketed(&l.to_string_lossy(), "socket:["))
            .collect())
    }

    /// The executable's file name (/proc/<pid>/exe), else the command name (comm, readable
    /// without privileges; at most 15 bytes).
    pub fn executable(&self, pid: u32) -> Result<String, Failure> {
        if let Ok(exe) = std::fs::read_link(self.path(pid, "exe"))
            && let Some(name) = exe.file_name()
        {
            let name = name.to_string_lossy();
            // A replaced binary reads "nginx (deleted)".
            return Ok(name.trim_end_matches(" (deleted)").to_owned());
        }
        self.read(pid, "comm").map(|c| c.trim_end().to_owned())
    }
}

/// `prefix<digits>]` -> digits.
fn bracketed(text: &str, prefix: &str) -> Option<u64> {
    text.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_their_inode() {
        assert_eq!(bracketed("net:[4026531840]", "net:["), Some(4026531840));
        assert_eq!(bracketed("socket:[12345]", "socket:["), Some(12345));
        assert_eq!(bracketed("pipe:[12345]", "socket:["), None);
        assert_eq!(bracketed("net:[x]", "net:["), None);
    }

    #[test]
    fn a_missing_process_is_exited_not_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Proc::new(dir.path());
        assert_eq!(p.netns(123), Err(Failure::Exited));
        assert_eq!(p.read(123, "net/tcp"), Err(Failure::Exited));
        assert_eq!(p.socket_inodes(123), Err(Failure::Exited));
        assert!(p.pids().expect("empty dir").is_empty());
    }
}
