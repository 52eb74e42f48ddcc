//! Admin queries: server information, keys by pattern (`SCAN`, never `KEYS`), and the raw
//! bytes and TTL at a key.

use super::RedisBackend;
use super::round_trip::Op;
use crate::error::Result;
use std::time::Duration;

impl RedisBackend {
    /// `INFO` (all sections) and `DBSIZE`, in one round trip.
    pub(crate) async fn info(&self) -> Result<(String, u64)> {
        let mut pipe = redis::pipe();
        pipe.cmd("INFO").cmd("DBSIZE");
        self.run(Op::Scan, &pipe).await
    }

    /// Keys matching `pattern` (SCAN, never KEYS), at most `limit`.
    pub(crate) async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys) = self.scan_step(pattern, cursor).await?;
            for k in keys {
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push(String::from_utf8_lossy(&k).into_owned());
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    /// The raw bytes at `key` and its remaining TTL, in one round trip.
    pub(crate) async fn inspect(&self, key: &str) -> Result<Option<(Vec<u8>, Duration)>> {
        let mut pipe = redis::pipe();
        pipe.get(key).cmd("PTTL").arg(key);
        let (bytes, pttl): (Option<Vec<u8>>, i64) = self.run(Op::Fetch, &pipe).await?;
        Ok(bytes.map(|b| {
            let left = u64::try_from(pttl).unwrap_or(0);
            (b, Duration::from_millis(left))
        }))
    }
}
