//! Reading other processes' /proc entries, under a configurable root. Every read reports why
//! it failed so the scan can count it: the process exited (ENOENT, ESRCH) or the entry is not
//! readable (EACCES, EPERM: without CAP_SYS_PTRACE, /proc/<pid>/ns, fd and exe of other users'
//! processes are not).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::sockets::past_listeners;

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

    /// The process's network namespace file (`/proc/<pid>/ns/net`).
    pub fn ns_path(&self, pid: u32) -> PathBuf {
        self.path(pid, "ns/net")
    }

    /// The inode of the process's network namespace (`net:[4026531840]`).
    pub fn netns(&self, pid: u32) -> Result<u64, Failure> {
        let link = std::fs::read_link(self.ns_path(pid)).map_err(|e| failure(&e))?;
        bracketed(&link.to_string_lossy(), "net:[").ok_or(Failure::Other)
    }

    /// The text of a file below /proc/<pid>/.
    pub fn read(&self, pid: u32, rel: &str) -> Result<String, Failure> {
        std::fs::read_to_string(self.path(pid, rel)).map_err(|e| failure(&e))
    }

    /// The leading lines of a /proc/<pid>/net/tcp or tcp6 text up to the first socket that is
    /// not listening (see [`past_listeners`]), read in chunks: a node with many connections
    /// neither copies nor keeps its whole table (20,000 lines with 10,000 flows on lo), and the
    /// kernel stops walking its socket hash where reading stops.
    pub fn read_listening(&self, pid: u32, rel: &str) -> Result<String, Failure> {
        use std::io::Read;
        const CHUNK: usize = 16 * 1024;
        let mut file = std::fs::File::open(self.path(pid, rel)).map_err(|e| failure(&e))?;
        let mut buf = vec![0u8; CHUNK];
        let mut text = String::new();
        let mut checked = 0;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => return Ok(text),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(failure(&e)),
            };
            // procfs socket tables are ASCII.
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(end) = text[checked..].find('\n') {
                let line = &text[checked..checked + end];
                checked += end + 1;
                if past_listeners(line) {
                    text.truncate(checked);
                    return Ok(text);
                }
            }
        }
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
        assert_eq!(p.read_listening(123, "net/tcp"), Err(Failure::Exited));
    }

    #[test]
    fn listening_part_ends_at_the_first_other_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("7/net")).expect("mkdir");
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        let listen = |i: u32| {
            format!(
                "{i:4}: 00000000:{:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 {} 1 0 100 0 0 10 0\n",
                8000 + i,
                100 + i
            )
        };
        let established = |i: u32| {
            format!(
                "{i:4}: 0100007F:1F90 0100007F:{:04X} 01 00000000:00000000 00:00000000 00000000     0        0 {} 1 0 20 4 30 10 -1\n",
                30000 + i,
                9000 + i
            )
        };
        // Enough listeners to span several chunks, then a large established table.
        let mut text = header.to_string();
        (0..300).for_each(|i| text.push_str(&listen(i)));
        let listening_len = text.len();
        (300..20_000).for_each(|i| text.push_str(&established(i)));
        std::fs::write(dir.path().join("7/net/tcp"), &text).expect("write");

        let p = Proc::new(dir.path());
        let read = p.read_listening(7, "net/tcp").expect("readable");
        assert_eq!(read.len(), listening_len + established(300).len());
        let (listeners, bad) = super::super::sockets::parse_listeners(&read);
        assert_eq!((listeners.len(), bad), (300, 0));
        // Listeners only (a namespace without connections): the whole text.
        std::fs::write(dir.path().join("7/net/tcp"), &text[..listening_len]).expect("write");
        assert_eq!(
            p.read_listening(7, "net/tcp").expect("readable").len(),
            listening_len
        );
    }
}
