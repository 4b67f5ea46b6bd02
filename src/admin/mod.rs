//! TEMPORARY stub until the config branch merges.
pub fn reply_for_shard(_shard: &crate::shard::Shard, cmd: &str) -> String {
    match cmd {
        "ruok" => "imok".into(),
        _ => String::new(),
    }
}
