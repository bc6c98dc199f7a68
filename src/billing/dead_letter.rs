//! The dead-letter file: billing records the database refused even after their text was
//! replaced, or could not take before the server stopped. One JSON object per line, appended
//! and synced to disk before the writer moves on, so no charge is lost; `tollgate billing
//! replay FILE` applies them later, each exactly once (see `db::logs::replay`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::records::logs::RequestLog;

/// One set-aside billing record, as written to the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// When it was set aside, in Unix milliseconds.
    pub set_aside_at: i64,
    /// What the database said.
    pub error: String,
    /// Whether the request moved balances (a refusal before any hold only has its log row).
    pub moves_balance: bool,
    /// Whether the key has a limit of its own, which the cost is taken from too.
    pub key_limited: bool,
    /// Whether the request counts toward request totals (an upstream answered).
    pub counted: bool,
    /// The request's log row; its `cost` is what the user owes.
    pub log: RequestLog,
}

/// Where set-aside records go.
#[derive(Clone, Debug)]
pub struct DeadLetterFile {
    path: PathBuf,
}

impl DeadLetterFile {
    pub fn new(path: PathBuf) -> DeadLetterFile {
        DeadLetterFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the records and syncs the file to disk.
    pub fn append(&self, letters: &[DeadLetter]) -> std::io::Result<()> {
        let mut text = Vec::new();
        for letter in letters {
            serde_json::to_writer(&mut text, letter)?;
            text.push(b'\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&text)?;
        file.sync_data()
    }
}

/// Reads a dead-letter file: each line's record, or why it cannot be read.
pub fn read(path: &Path) -> std::io::Result<Vec<Result<DeadLetter, String>>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).map_err(|e| e.to_string()))
        .collect())
}

/// How many records a dead-letter file holds (its non-blank lines); 0 when there is none.
pub fn count(path: &Path) -> std::io::Result<u64> {
    use std::io::BufRead;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut records = 0;
    for line in std::io::BufReader::new(file).split(b'\n') {
        if !line?.trim_ascii().is_empty() {
            records += 1;
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_the_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = DeadLetterFile::new(dir.path().join(crate::config::DEAD_LETTER_FILE_NAME));
        let mut log = RequestLog::empty();
        log.request_id = "abc".into();
        log.cost = 1234;
        log.model = "a\u{0}b".into();
        let letter = DeadLetter {
            set_aside_at: 1,
            error: "refused".into(),
            moves_balance: true,
            key_limited: false,
            counted: true,
            log,
        };
        file.append(std::slice::from_ref(&letter)).unwrap();
        file.append(std::slice::from_ref(&letter)).unwrap();
        std::fs::write(dir.path().join("broken.jsonl"), "{\"not\": \"a letter\"}\n").unwrap();
        let read_back = read(file.path()).unwrap();
        assert_eq!(read_back, vec![Ok(letter.clone()), Ok(letter)]);
        assert_eq!(count(file.path()).unwrap(), 2);
        assert_eq!(count(&dir.path().join("none.jsonl")).unwrap(), 0);
        let broken = read(&dir.path().join("broken.jsonl")).unwrap();
        assert!(broken[0].is_err());
    }
}
