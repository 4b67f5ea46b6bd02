//! Session passwords as Apache ZooKeeper derives them.
//!
//! ZooKeeper does not store session passwords: `ZooKeeperServer.generatePasswd` derives
//! one from the session id whenever it needs it, as the first 16 bytes of
//! `java.util.Random` seeded with `id ^ superSecret`, where `superSecret` is the
//! constant `0xB3415C00` in every release from 3.5 to 3.9. Reproducing that generator
//! gives an imported session the very password its client holds, so a client that was
//! connected to ZooKeeper can reattach to ferrokeeper after the migration (within its
//! session timeout) with the id and password it already has.

/// `ZooKeeperServer.superSecret`.
const SUPER_SECRET: i64 = 0xB341_5C00;

/// `java.util.Random`'s linear congruential generator: multiplier, addend, 48-bit state.
const LCG_MULTIPLIER: u64 = 0x5_DEEC_E66D;
const LCG_ADDEND: u64 = 0xB;
const LCG_MASK: u64 = (1 << 48) - 1;

/// The password ZooKeeper 3.5–3.9 hands out for `session_id`.
pub fn zookeeper_session_passwd(session_id: i64) -> [u8; 16] {
    // new Random(seed): the seed is scrambled with the multiplier and cut to 48 bits.
    let mut state = ((session_id ^ SUPER_SECRET) as u64 ^ LCG_MULTIPLIER) & LCG_MASK;
    let mut out = [0u8; 16];
    // Random.nextBytes: one nextInt() (next(32), the state's top 32 bits) per 4 bytes,
    // least significant byte first.
    for chunk in out.chunks_mut(4) {
        state = state.wrapping_mul(LCG_MULTIPLIER).wrapping_add(LCG_ADDEND) & LCG_MASK;
        let mut word = (state >> 16) as u32;
        for b in chunk {
            *b = word as u8;
            word >>= 8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Expected values printed by `new Random(id ^ 0xB3415C00L).nextBytes(new byte[16])`
    /// on OpenJDK 17 (the body of `ZooKeeperServer.generatePasswd`).
    #[test]
    fn matches_java_random() {
        let cases: &[(i64, &str)] = &[
            (0, "f22acd4a97e69d6d20a49bb638eadb38"),
            (1, "054cc74a37327db215e702e20c73f005"),
            (0x0100_000a_3f2e_0000, "10dee3bb5d1edd1c6e472a3f6e8637b4"),
            (-1, "20f62cb5648dc2d771471c8a2486a9ee"),
            (i64::MAX, "20f62cb5648dc2d771471c8a2486a9ee"),
        ];
        for (id, want) in cases {
            assert_eq!(hex(&zookeeper_session_passwd(*id)), *want, "id {id:#x}");
        }
    }
}
