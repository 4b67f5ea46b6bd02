//! # ferrokeeper-storage — transaction log, snapshots, recovery, import
//!
//! Not yet built (issue: durable storage). Until it lands, the commit stage keeps its
//! log in memory and ferrokeeper's data is **not durable**.
#![warn(missing_docs)]
