//! Scan sequence numbers that survive restarts.
//!
//! The server keys each gate scan by `mqtt/{gate}/{seq}` and answers a seq
//! it has seen from its record, without deciding again (PROTOCOLS.md §3):
//! a bridge that started counting from 1 after a restart would have every
//! scan answered with an old decision, and the barrier would not open. A
//! wall-clock seq is no answer either: an edge box without a real-time
//! clock can boot into the past.
//!
//! So the seq counts up from a high-water mark kept in a file. Seqs are
//! reserved in blocks of [`SEQ_BLOCK`]: before the first seq of a block is
//! used, the end of the block is written (to a temporary file, synced, then
//! renamed over the old one). A restart continues from the written mark —
//! skipping what was left of the block, never reusing a seq — and the SD
//! card of the box sees one write per thousand scans, not one per scan.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Seqs reserved per write of the file.
pub const SEQ_BLOCK: u64 = 1_000;

/// Why the seq file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeqError {
    /// Reading or writing it failed.
    #[error("seq file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It holds something other than a number: not guessed at, since a
    /// wrong guess could reuse seqs.
    #[error("seq file {path} holds {found:?}, not a number: fix or remove it")]
    Corrupt {
        /// The file.
        path: String,
        /// What it holds (at most 32 characters).
        found: String,
    },
}

/// The next seqs, backed by a file.
#[derive(Debug)]
pub struct SeqFile {
    path: PathBuf,
    /// The seq handed out next.
    next: u64,
    /// Seqs below this are reserved in the file.
    reserved: u64,
}

impl SeqFile {
    /// Reads the mark (a missing file starts at 1). Nothing is written yet.
    pub fn open(path: &Path) -> Result<SeqFile, SeqError> {
        let shown = path.display().to_string();
        let next = match std::fs::read_to_string(path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| SeqError::Corrupt {
                    path: shown.clone(),
                    found: text.chars().take(32).collect(),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(source) => {
                return Err(SeqError::Io {
                    path: shown,
                    source,
                })
            }
        };
        Ok(SeqFile {
            path: path.to_owned(),
            next,
            reserved: next,
        })
    }

    /// The next seq, reserving a new block in the file first when needed.
    /// On a write failure nothing is handed out.
    pub fn take(&mut self) -> Result<u64, SeqError> {
        if self.next >= self.reserved {
            let mark = self.next.saturating_add(SEQ_BLOCK);
            self.write(mark).map_err(|source| SeqError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
            self.reserved = mark;
        }
        let seq = self.next;
        self.next += 1;
        Ok(seq)
    }

    fn write(&self, mark: u64) -> std::io::Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "{mark}")?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_and_never_reuses_a_seq_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g1.seq");
        let mut seqs = SeqFile::open(&path).unwrap();
        assert_eq!((seqs.take().unwrap(), seqs.take().unwrap()), (1, 2));
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), "1001");
        // A restart (or a crash) continues past the reserved block.
        let mut again = SeqFile::open(&path).unwrap();
        assert_eq!(again.take().unwrap(), 1_001);
        for _ in 0..SEQ_BLOCK {
            again.take().unwrap();
        }
        assert_eq!(again.take().unwrap(), 2_002);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), "3001");
    }

    #[test]
    fn a_corrupt_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g1.seq");
        for text in ["", "abc\n", "0\n", "-5\n"] {
            std::fs::write(&path, text).unwrap();
            let err = SeqFile::open(&path).unwrap_err().to_string();
            assert!(err.contains("not a number"), "{text:?}: {err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
    }

    #[test]
    fn an_unwritable_file_hands_out_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut seqs = SeqFile::open(&dir.path().join("missing-dir/g1.seq")).unwrap();
        assert!(seqs.take().is_err());
        assert!(seqs.take().is_err());
    }
}
