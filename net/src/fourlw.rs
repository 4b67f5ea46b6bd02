//! ZooKeeper's four-letter words as they appear on the client port: the words, the
//! bytes that start a connection asking for one, and the `4lw.commands.whitelist` rules.
//! What a word answers is the server's business; this module only names them.

use std::fmt;

/// The telnet "interrupt process, do" sequence, which telnet sends when it closes.
pub const TELNET_CLOSE_CODE: [u8; 4] = [0xff, 0xf4, 0xff, 0xfd];

/// One of ZooKeeper's four-letter words (`FourLetterCommands`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FourLetterWord {
    /// `conf`: the server's settings.
    Conf,
    /// `cons`: every connection with its session details.
    Cons,
    /// `crst`: reset every connection's statistics.
    Crst,
    /// `dirs`: bytes under the data and log directories.
    Dirs,
    /// `dump`: session expiry schedule, ephemerals by session, connection expiry schedule.
    Dump,
    /// `envi`: the server's environment.
    Envi,
    /// `gtmk`: the trace mask.
    Gtmk,
    /// `ruok`: answers `imok`.
    Ruok,
    /// `stmk`: set the trace mask (8 more bytes follow the word).
    Stmk,
    /// `srst`: reset the server statistics.
    Srst,
    /// `srvr`: version, latency, counters, mode, node count.
    Srvr,
    /// `stat`: `srvr` plus a line per connection.
    Stat,
    /// `wchc`: watches by session.
    Wchc,
    /// `wchp`: watches by path.
    Wchp,
    /// `wchs`: watch summary.
    Wchs,
    /// `mntr`: monitoring values, `zk_<key>\t<value>`.
    Mntr,
    /// `isro`: `ro` or `rw`.
    Isro,
    /// `hash`: the tree digest history.
    Hash,
    /// The telnet close sequence, which ZooKeeper registers as a command.
    TelnetClose,
}

impl FourLetterWord {
    /// Every word, in ZooKeeper's registration order.
    pub const ALL: [FourLetterWord; 19] = [
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Crst,
        FourLetterWord::Dirs,
        FourLetterWord::Dump,
        FourLetterWord::Envi,
        FourLetterWord::Gtmk,
        FourLetterWord::Ruok,
        FourLetterWord::Stmk,
        FourLetterWord::Srst,
        FourLetterWord::Srvr,
        FourLetterWord::Stat,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Wchs,
        FourLetterWord::Mntr,
        FourLetterWord::Isro,
        FourLetterWord::Hash,
        FourLetterWord::TelnetClose,
    ];

    /// ZooKeeper's name for the word: the four letters, or `telnet close`.
    pub fn name(self) -> &'static str {
        match self {
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Hash => "hash",
            FourLetterWord::TelnetClose => "telnet close",
        }
    }

    /// The four bytes that start a connection asking for this word.
    pub fn code(self) -> [u8; 4] {
        match self.name().as_bytes() {
            &[a, b, c, d] => [a, b, c, d],
            _ => TELNET_CLOSE_CODE,
        }
    }

    /// The word named `name` (as [`FourLetterWord::name`] spells it; case-sensitive, as in
    /// ZooKeeper).
    pub fn from_name(name: &str) -> Option<FourLetterWord> {
        FourLetterWord::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Bytes the client sends after the word: 8 for `stmk` (the mask), else 0.
    pub fn argument_len(self) -> usize {
        if self == FourLetterWord::Stmk {
            8
        } else {
            0
        }
    }

    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for FourLetterWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The four-letter words a server answers (`4lw.commands.whitelist`).
///
/// ZooKeeper's rules (`FourLetterCommands.isEnabled`): the setting is a comma-separated
/// list of words, each trimmed, empty entries skipped; `*` enables every word; `srvr` is
/// always enabled (zkServer.sh needs it). Without the setting only `srvr` is enabled.
/// (ZooKeeper also enables `isro` when `readonlymode.enabled`, which ferrokeeper does not
/// support.)
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FourLetterWhitelist {
    bits: u32,
}

impl FourLetterWhitelist {
    /// ZooKeeper's default: `srvr` alone.
    pub fn zookeeper_default() -> FourLetterWhitelist {
        FourLetterWhitelist {
            bits: FourLetterWord::Srvr.bit(),
        }
    }

    /// Every word (`*`).
    pub fn all() -> FourLetterWhitelist {
        FourLetterWhitelist {
            bits: FourLetterWord::ALL.iter().fold(0, |bits, w| bits | w.bit()),
        }
    }

    /// Parses a `4lw.commands.whitelist` value. Returns the whitelist and the entries that
    /// are not four-letter words (ignored; the caller warns about them).
    pub fn parse(list: &str) -> (FourLetterWhitelist, Vec<String>) {
        let mut whitelist = FourLetterWhitelist::zookeeper_default();
        let mut unknown = Vec::new();
        for entry in list.split(',').map(str::trim) {
            if entry == "*" {
                return (FourLetterWhitelist::all(), Vec::new());
            }
            if entry.is_empty() {
                continue;
            }
            match FourLetterWord::from_name(entry) {
                Some(word) => whitelist.insert(word),
                None => unknown.push(entry.to_string()),
            }
        }
        (whitelist, unknown)
    }

    /// Adds a word.
    pub fn insert(&mut self, word: FourLetterWord) {
        self.bits |= word.bit();
    }

    /// Whether the word is answered.
    pub fn contains(&self, word: FourLetterWord) -> bool {
        self.bits & word.bit() != 0
    }

    /// The enabled words, in ZooKeeper's order.
    pub fn words(&self) -> impl Iterator<Item = FourLetterWord> + '_ {
        FourLetterWord::ALL
            .into_iter()
            .filter(|w| self.contains(*w))
    }
}

impl Default for FourLetterWhitelist {
    fn default() -> Self {
        FourLetterWhitelist::zookeeper_default()
    }
}

impl fmt::Debug for FourLetterWhitelist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.words().map(FourLetterWord::name))
            .finish()
    }
}

/// The four-letter word a connection starts with, if its first four bytes are one;
/// `None` means they are the length prefix of an ordinary request.
pub fn classify(first4: [u8; 4]) -> Option<FourLetterWord> {
    FourLetterWord::ALL.into_iter().find(|w| w.code() == first4)
}
