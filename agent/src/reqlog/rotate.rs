//! A log file that rotates by size: `apitap.log` is live, `apitap.log.1` the newest old one,
//! up to `apitap.log.{keep-1}`; older ones are deleted. With `keep = 1` the live file is simply
//! started afresh.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Buffer between the writer and the file: big enough that a flush is one write per second or
/// so at thousands of records per second.
const BUFFER_BYTES: usize = 64 * 1024;

pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    out: BufWriter<File>,
    /// Bytes in the live file, buffered ones included.
    size: u64,
    rotations: u64,
}

impl RotatingFile {
    /// Opens (appending to) `path`, creating it and continuing its size count.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            max_bytes,
            keep: keep.max(1),
            out: BufWriter::with_capacity(BUFFER_BYTES, file),
            size,
            rotations: 0,
        })
    }

    /// Writes one whole line (the caller includes the newline), rotating first when the line
    /// would take the live file past `max_bytes`. A line longer than `max_bytes` gets a file of
    /// its own rather than being cut.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size.saturating_add(line.len() as u64) > self.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// How many times the live file was rotated since it was opened.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.keep == 1 {
            self.out = BufWriter::with_capacity(BUFFER_BYTES, File::create(&self.path)?);
        } else {
            remove_if_present(&numbered(&self.path, self.keep - 1))?;
            for n in (1..self.keep - 1).rev() {
                rename_if_present(&numbered(&self.path, n), &numbered(&self.path, n + 1))?;
            }
            fs::rename(&self.path, numbered(&self.path, 1))?;
            self.out = BufWriter::with_capacity(BUFFER_BYTES, open_append(&self.path)?);
        }
        self.size = 0;
        self.rotations += 1;
        Ok(())
    }
}

/// `apitap.log` -> `apitap.log.3`.
pub fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[rstest]
    #[case::one_file(1, &["apitap.log"])]
    #[case::three_files(3, &["apitap.log", "apitap.log.1", "apitap.log.2"])]
    #[case::five_files(5, &["apitap.log", "apitap.log.1", "apitap.log.2", "apitap.log.3", "apitap.log.4"])]
    fn rotation_keeps_exactly_the_configured_number_of_files(
        #[case] keep: usize,
        #[case] want: &[&str],
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("apitap.log");
        let mut f = RotatingFile::open(&path, 1_000, keep).expect("open");
        let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        for _ in 0..200 {
            f.write_line(&line).expect("write");
        }
        f.flush().expect("flush");
        assert_eq!(files_in(dir.path()), want);
        // 200 lines of 100 bytes, 10 per file: 19 rotations, every kept file full.
        assert_eq!(f.rotations(), 19);
        for name in want {
            assert_eq!(
                fs::metadata(dir.path().join(name)).expect("meta").len(),
                1_000,
                "{name}"
            );
        }
    }

    #[test]
    fn newest_rotated_file_is_dot_one_and_no_line_is_split() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("apitap.log");
        let mut f = RotatingFile::open(&path, 64, 3).expect("open");
        for i in 0..9 {
            f.write_line(format!("line-{i:02}-padding-to-thirty-bytes\n").as_bytes())
                .expect("write");
        }
        f.flush().expect("flush");
        let read = |n: &str| fs::read_to_string(dir.path().join(n)).expect("read");
        assert_eq!(read("apitap.log"), "line-08-padding-to-thirty-bytes\n");
        assert!(read("apitap.log.1").starts_with("line-06"));
        assert!(read("apitap.log.2").starts_with("line-04"));
    }

    #[test]
    fn reopening_continues_the_size_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("apitap.log");
        fs::write(&path, [b'a'; 90]).expect("seed");
        let mut f = RotatingFile::open(&path, 100, 2).expect("open");
        f.write_line(b"0123456789abc\n").expect("write");
        f.flush().expect("flush");
        assert_eq!(fs::metadata(numbered(&path, 1)).expect("rotated").len(), 90);
        assert_eq!(fs::read(&path).expect("live"), b"0123456789abc\n");
    }
}
