//! Numeric constants of the protocol: opcodes (`ZooDefs.OpCode`), error codes
//! (`KeeperException.Code`), watch event types and states (`Watcher.java`), create modes
//! (`CreateMode.java`), permissions (`ZooDefs.Perms`) and special xids (`ClientCnxn.java`).

macro_rules! int_enum {
    ($(#[$m:meta])* pub enum $name:ident : $what:literal { $( $(#[$vm:meta])* $v:ident = $n:expr ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name { $( $(#[$vm])* $v = $n ),* }
        impl $name {
            /// The enum value for a wire integer, if the protocol defines one.
            pub fn from_i32(n: i32) -> Option<Self> {
                match n { $( $n => Some(Self::$v), )* _ => None }
            }
            /// The wire integer.
            pub fn code(self) -> i32 { self as i32 }
            /// The name ZooKeeper uses for this value.
            pub fn name(self) -> &'static str {
                match self { $( Self::$v => stringify!($v), )* }
            }
            /// What the enum is called in error messages.
            pub const WHAT: &'static str = $what;
        }
    };
}

int_enum! {
    /// Request types (`ZooDefs.OpCode`).
    pub enum OpCode: "opcode" {
        /// Watch notification (xid −1); never a request.
        Notification = 0,
        /// Create a znode.
        Create = 1,
        /// Delete a znode.
        Delete = 2,
        /// Stat a znode, maybe leaving a watch.
        Exists = 3,
        /// Read data and stat.
        GetData = 4,
        /// Write data.
        SetData = 5,
        /// Read the ACL.
        GetAcl = 6,
        /// Write the ACL.
        SetAcl = 7,
        /// List children.
        GetChildren = 8,
        /// Flush the leader channel.
        Sync = 9,
        /// Keep the session alive.
        Ping = 11,
        /// List children with the parent's stat.
        GetChildren2 = 12,
        /// Version check (inside multi).
        Check = 13,
        /// Atomic multi-op.
        Multi = 14,
        /// Create returning the stat.
        Create2 = 15,
        /// Dynamic reconfiguration.
        Reconfig = 16,
        /// Check a watch exists.
        CheckWatches = 17,
        /// Remove watches.
        RemoveWatches = 18,
        /// Create a container znode.
        CreateContainer = 19,
        /// Server-internal container deletion.
        DeleteContainer = 20,
        /// Create a TTL znode.
        CreateTtl = 21,
        /// Read-only multi.
        MultiRead = 22,
        /// Add authentication (xid −4).
        Auth = 100,
        /// Re-register watches after reconnect (xid −8).
        SetWatches = 101,
        /// SASL token exchange.
        Sasl = 102,
        /// List the session's ephemerals.
        GetEphemerals = 103,
        /// Count all descendants.
        GetAllChildrenNumber = 104,
        /// SetWatches with persistent watches.
        SetWatches2 = 105,
        /// Add a persistent watch.
        AddWatch = 106,
        /// Report the session's identities.
        WhoAmI = 107,
        /// Session creation (txn type only).
        CreateSession = -10,
        /// Close the session.
        CloseSession = -11,
        /// Error txn / error result in multi.
        Error = -1,
    }
}

int_enum! {
    /// Result codes (`KeeperException.Code`).
    pub enum ErrorCode: "error code" {
        /// Success.
        Ok = 0,
        /// System error.
        SystemError = -1,
        /// Runtime inconsistency.
        RuntimeInconsistency = -2,
        /// Data inconsistency.
        DataInconsistency = -3,
        /// Connection lost.
        ConnectionLoss = -4,
        /// Marshalling error.
        MarshallingError = -5,
        /// Unimplemented operation.
        Unimplemented = -6,
        /// Operation timeout.
        OperationTimeout = -7,
        /// Bad arguments.
        BadArguments = -8,
        /// Unknown session.
        UnknownSession = -12,
        /// New config has no quorum.
        NewConfigNoQuorum = -13,
        /// Reconfig in progress.
        ReconfigInProgress = -14,
        /// API error.
        ApiError = -100,
        /// No such node.
        NoNode = -101,
        /// Not authorised.
        NoAuth = -102,
        /// Version mismatch.
        BadVersion = -103,
        /// Ephemerals cannot have children.
        NoChildrenForEphemerals = -108,
        /// Node exists.
        NodeExists = -110,
        /// Node has children.
        NotEmpty = -111,
        /// Session expired.
        SessionExpired = -112,
        /// Invalid callback.
        InvalidCallback = -113,
        /// Invalid ACL.
        InvalidAcl = -114,
        /// Authentication failed.
        AuthFailed = -115,
        /// Session moved.
        SessionMoved = -118,
        /// Not a read-only call.
        NotReadOnly = -119,
        /// Ephemeral on local session.
        EphemeralOnLocalSession = -120,
        /// No such watcher.
        NoWatcher = -121,
        /// Request timeout.
        RequestTimeout = -122,
        /// Reconfig disabled.
        ReconfigDisabled = -123,
        /// SASL required.
        SessionClosedRequireSaslAuth = -124,
        /// Quota exceeded.
        QuotaExceeded = -125,
        /// Throttled.
        ThrottledOp = -127,
    }
}

int_enum! {
    /// Watch event types (`Watcher.Event.EventType`).
    pub enum EventType: "event type" {
        /// State change only.
        None = -1,
        /// Node created.
        NodeCreated = 1,
        /// Node deleted.
        NodeDeleted = 2,
        /// Data changed.
        NodeDataChanged = 3,
        /// Children changed.
        NodeChildrenChanged = 4,
        /// Data watch removed.
        DataWatchRemoved = 5,
        /// Child watch removed.
        ChildWatchRemoved = 6,
        /// Persistent watch removed.
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// Client states carried in watch events (`Watcher.Event.KeeperState`).
    pub enum KeeperState: "keeper state" {
        /// Unknown (deprecated).
        Unknown = -1,
        /// Disconnected.
        Disconnected = 0,
        /// Deprecated.
        NoSyncConnected = 1,
        /// Connected.
        SyncConnected = 3,
        /// Auth failed.
        AuthFailed = 4,
        /// Connected read-only.
        ConnectedReadOnly = 5,
        /// SASL authenticated.
        SaslAuthenticated = 6,
        /// Session expired.
        Expired = -112,
        /// Closed.
        Closed = 7,
    }
}

int_enum! {
    /// Watch kinds for checkWatches / removeWatches (`Watcher.WatcherType`).
    pub enum WatcherType: "watcher type" {
        /// Child watches.
        Children = 1,
        /// Data (and exist) watches.
        Data = 2,
        /// Any watch.
        Any = 3,
        /// Persistent watches.
        Persistent = 4,
        /// Persistent recursive watches.
        PersistentRecursive = 5,
    }
}

int_enum! {
    /// Modes of addWatch (`AddWatchMode`).
    pub enum AddWatchMode: "add watch mode" {
        /// Persistent watch on one node.
        Persistent = 0,
        /// Persistent watch on a whole subtree.
        PersistentRecursive = 1,
    }
}

int_enum! {
    /// Create flags (`CreateMode`).
    pub enum CreateMode: "create mode" {
        /// Persistent.
        Persistent = 0,
        /// Ephemeral.
        Ephemeral = 1,
        /// Persistent sequential.
        PersistentSequential = 2,
        /// Ephemeral sequential.
        EphemeralSequential = 3,
        /// Container.
        Container = 4,
        /// Persistent with TTL.
        PersistentWithTtl = 5,
        /// Persistent sequential with TTL.
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Whether the server appends a sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    /// Whether the node dies with its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
    /// Whether the node is a container.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
    /// Whether the node carries a TTL.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

/// Permission bits (`ZooDefs.Perms`).
pub mod perms {
    /// Read data and list children.
    pub const READ: i32 = 1;
    /// Set data.
    pub const WRITE: i32 = 2;
    /// Create children.
    pub const CREATE: i32 = 4;
    /// Delete children.
    pub const DELETE: i32 = 8;
    /// Set the ACL.
    pub const ADMIN: i32 = 16;
    /// Everything.
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// Special xids (`ClientCnxn.java`).
pub mod xid {
    /// Watch notifications.
    pub const NOTIFICATION: i32 = -1;
    /// Pings.
    pub const PING: i32 = -2;
    /// Auth packets.
    pub const AUTH: i32 = -4;
    /// SetWatches packets.
    pub const SET_WATCHES: i32 = -8;
}
