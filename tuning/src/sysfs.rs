//! Reading the small text files of `/proc` and `/sys`.
//!
//! Both the host facts ([`crate::host`]) and the disk probe ([`crate::probe`]) read such
//! files, and a missing file is a fact there (a container without `/sys`, a kernel without
//! the setting), not an error; so this sits below both and answers `None` for it.

use std::path::Path;

/// Reads a small text file; `None` if it is absent or unreadable.
pub(crate) fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}
