//! How Java prints the values that appear in ZooKeeper's four-letter-word replies.
//!
//! ZooKeeper builds those replies with `PrintWriter.print(x)` on Java values, so the text
//! is Java's `toString` of a `double`, a `java.util.Date`, an `InetSocketAddress`, and
//! `Long.toHexString` of a `long`. Monitoring scripts parse that text; these functions
//! reproduce it.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// `Double.toString`: `0.0`, `2.1875`, `100.0`, `1.0E-4`, `1.23456781234E7`, `NaN`.
///
/// Plain decimal for magnitudes in [10^-3, 10^7), otherwise "computerized scientific
/// notation"; always at least one digit after the point. Digits are the shortest that
/// round-trip, as Rust prints them (the values ZooKeeper prints are rounded to 4 places
/// first, where Java 17 and the shortest form agree).
pub fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let magnitude = x.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let plain = format!("{x}");
        if plain.contains('.') {
            plain
        } else {
            plain + ".0"
        }
    } else {
        let scientific = format!("{x:e}");
        let (mantissa, exponent) = scientific
            .split_once('e')
            .expect("Rust's {:e} output always has an exponent");
        if mantissa.contains('.') {
            format!("{mantissa}E{exponent}")
        } else {
            format!("{mantissa}.0E{exponent}")
        }
    }
}

/// ZooKeeper's average (`AvgMinMaxCounter.getAvg`): `total / count` as a double, rounded to
/// 4 decimal places half-up (on the double's exact binary value, as `new BigDecimal(double)`
/// does); 0 when `count` is 0.
pub fn java_rounded_avg(total: u64, count: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let avg = total as f64 / count as f64;
    round_half_up_4(avg)
}

/// Rounds the exact decimal expansion of a finite, non-negative `x` to 4 places, half-up.
fn round_half_up_4(x: f64) -> f64 {
    // Every finite double has a finite decimal expansion of at most 1074 fractional digits,
    // so printing 1100 digits is exact: no rounding happens in the formatting.
    let exact = format!("{x:.1100}");
    let (int_part, frac_part) = exact.split_once('.').unwrap_or((exact.as_str(), ""));
    let keep = &frac_part[..4.min(frac_part.len())];
    let round_up = frac_part.as_bytes().get(4).is_some_and(|&d| d >= b'5');
    let mut digits: Vec<u8> = format!("{int_part}{keep:0<4}").into_bytes();
    if round_up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - 4;
    let text = format!(
        "{}.{}",
        String::from_utf8_lossy(&digits[..split]),
        String::from_utf8_lossy(&digits[split..])
    );
    text.parse().unwrap_or(x)
}

/// `Long.toHexString`: lower-case hex of the two's complement bits, no padding
/// (`-1` is `ffffffffffffffff`).
pub fn java_hex(x: i64) -> String {
    format!("{x:x}")
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `java.util.Date.toString` in UTC: `Sun Nov 22 03:16:30 UTC 2026`.
///
/// Java prints the JVM's default time zone; ferrokeeper always prints UTC (what a server
/// with `TZ` unset prints).
pub fn java_date_utc(epoch_ms: i64) -> String {
    let seconds = epoch_ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{weekday} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        MONTHS[(month - 1) as usize],
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `InetSocketAddress.toString` for an address without a host name (Java 14+):
/// `/127.0.0.1:43768`, `/[0:0:0:0:0:0:0:1]:4242`, `/[fe80:0:0:0:0:0:0:1%2]:4242`.
/// An IPv4-mapped IPv6 address prints as IPv4, as Java converts it on accept.
pub fn java_socket_addr(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => format!("/{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => {
            if let Some(v4) = v6.ip().to_ipv4_mapped() {
                return format!("/{v4}:{}", v6.port());
            }
            let mut out = String::from("/[");
            for (i, segment) in v6.ip().segments().iter().enumerate() {
                if i > 0 {
                    out.push(':');
                }
                let _ = write!(out, "{segment:x}");
            }
            if v6.scope_id() != 0 {
                let _ = write!(out, "%{}", v6.scope_id());
            }
            let _ = write!(out, "]:{}", v6.port());
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, SocketAddrV6};

    // Expected strings printed by OpenJDK 17 (System.out.println of the same values).

    #[test]
    fn doubles_print_like_java() {
        for (x, java) in [
            (0.0, "0.0"),
            (2.0, "2.0"),
            (2.1875, "2.1875"),
            (0.0001, "1.0E-4"),
            (0.001, "0.001"),
            (0.0005, "5.0E-4"),
            (1e7, "1.0E7"),
            (12345678.1234, "1.23456781234E7"),
            (9999999.9999, "9999999.9999"),
            (0.0015, "0.0015"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
        ] {
            assert_eq!(java_double(x), java, "{x}");
        }
    }

    #[test]
    fn averages_round_half_up_to_four_places() {
        assert_eq!(java_rounded_avg(0, 0), 0.0);
        assert_eq!(java_rounded_avg(34, 15), 2.2667); // 2.26666...
        assert_eq!(java_rounded_avg(35, 16), 2.1875);
        assert_eq!(java_rounded_avg(1, 3), 0.3333);
        assert_eq!(java_rounded_avg(2, 3), 0.6667);
        // 1/32 = 0.03125 exactly: a true tie, which HALF_UP rounds up.
        assert_eq!(java_rounded_avg(1, 32), 0.0313);
        assert_eq!(java_rounded_avg(99_999, 10_000), 9.9999);
        assert_eq!(java_rounded_avg(999_995, 100_000), 10.0);
        assert_eq!(java_double(java_rounded_avg(7, 7)), "1.0");
    }

    #[test]
    fn hex_is_unsigned_twos_complement() {
        assert_eq!(java_hex(0x100000712500000), "100000712500000");
        assert_eq!(java_hex(-1), "ffffffffffffffff");
        assert_eq!(java_hex(0), "0");
    }

    #[test]
    fn dates_print_like_java_in_utc() {
        assert_eq!(java_date_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(
            java_date_utc(1_795_317_342_400),
            "Sun Nov 22 03:15:42 UTC 2026"
        );
        assert_eq!(
            java_date_utc(951_782_400_000),
            "Tue Feb 29 00:00:00 UTC 2000"
        );
        assert_eq!(java_date_utc(-1000), "Wed Dec 31 23:59:59 UTC 1969");
    }

    #[test]
    fn socket_addresses_print_like_java() {
        let v4: SocketAddr = "127.0.0.1:43768".parse().expect("addr");
        assert_eq!(java_socket_addr(&v4), "/127.0.0.1:43768");
        let v6: SocketAddr = "[::1]:4242".parse().expect("addr");
        assert_eq!(java_socket_addr(&v6), "/[0:0:0:0:0:0:0:1]:4242");
        let v6: SocketAddr = "[2001:db8::ab:0]:4242".parse().expect("addr");
        assert_eq!(java_socket_addr(&v6), "/[2001:db8:0:0:0:0:ab:0]:4242");
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4242".parse().expect("addr");
        assert_eq!(java_socket_addr(&mapped), "/127.0.0.1:4242");
        let scoped = SocketAddr::V6(SocketAddrV6::new(
            "fe80::1".parse::<Ipv6Addr>().expect("ip"),
            4242,
            0,
            1,
        ));
        assert_eq!(java_socket_addr(&scoped), "/[fe80:0:0:0:0:0:0:1%1]:4242");
    }
}
