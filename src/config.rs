//! TEMPORARY stub until the config branch merges.
#![allow(missing_docs)]
use std::net::IpAddr;
use std::path::{Path, PathBuf};
#[derive(Debug, Clone)]
pub struct Config {
    pub tick_time_ms: u32,
    pub client_port: u16,
    pub client_port_address: Option<IpAddr>,
    pub data_dir: PathBuf,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    pub jute_max_buffer: usize,
    pub extended_types_enabled: bool,
    pub skip_acl: bool,
    pub super_digest: Option<String>,
    pub server_id: u64,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u64,
    pub container_max_never_used_interval_ms: u64,
    pub shards: usize,
    pub max_client_cnxns: u64,
    pub commit_queue_depth: usize,
    pub commit_batch_max: usize,
}
impl Config {
    pub fn embedded_default() -> Config {
        Config {
            tick_time_ms: 2000,
            client_port: 2181,
            client_port_address: None,
            data_dir: "./data".into(),
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            jute_max_buffer: 0xfffff,
            extended_types_enabled: false,
            skip_acl: false,
            super_digest: None,
            server_id: 0,
            container_check_interval_ms: 60000,
            container_max_per_minute: 10000,
            container_max_never_used_interval_ms: 0,
            shards: 2,
            max_client_cnxns: 60,
            commit_queue_depth: 4096,
            commit_batch_max: 1024,
        }
    }
    pub fn load(p: &Path) -> Result<(Config, Vec<String>), String> {
        let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
        let mut c = Config::embedded_default();
        for l in text.lines() {
            let Some((k, v)) = l.split_once('=') else {
                continue;
            };
            match k.trim() {
                "clientPort" => c.client_port = v.trim().parse().unwrap_or(2181),
                "tickTime" => {
                    c.tick_time_ms = v.trim().parse().unwrap_or(2000);
                    c.min_session_timeout_ms = 2 * c.tick_time_ms;
                    c.max_session_timeout_ms = 20 * c.tick_time_ms;
                }
                "extendedTypesEnabled" => c.extended_types_enabled = v.trim() == "true",
                "maxClientCnxns" => c.max_client_cnxns = v.trim().parse().unwrap_or(60),
                "clientPortAddress" => c.client_port_address = v.trim().parse().ok(),
                "znode.container.checkIntervalMs" => {
                    c.container_check_interval_ms = v.trim().parse().unwrap_or(60000)
                }
                _ => {}
            }
        }
        Ok((c, vec![]))
    }
}
