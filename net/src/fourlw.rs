//! Four-letter-word commands (`ruok`, `srvr`, `mntr`, ...). ZooKeeper recognises them
//! only as the very first four bytes of a connection, where a length prefix would be:
//! the bytes read as an `int` equal one of the commands' codes.

/// The four-letter commands ZooKeeper 3.8/3.9 knows (`FourLetterCommands.java`).
pub const COMMANDS: [&str; 18] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// The command named by a connection's first four bytes, if they spell one.
pub fn sniff(first: [u8; 4]) -> Option<&'static str> {
    COMMANDS.iter().copied().find(|c| c.as_bytes() == first)
}
