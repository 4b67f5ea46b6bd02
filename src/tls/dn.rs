//! A certificate subject as Java's `X500Principal.getName()` writes it (RFC 2253): the
//! id the `x509` ACL scheme gives a client (`X509AuthenticationProvider`).
//!
//! Java's form differs from x509-parser's `Display` (`O=Example, CN=client`), so an ACL
//! written for a Java server would never match that: RDNs come most specific first
//! (the reverse of their DER order), separated by `,` with no space; the attribute types
//! RFC 2253 names (CN, C, L, ST, O, OU, STREET, DC, UID) are written by keyword and every
//! other type as its dotted OID with the value as `#` and the hex of its whole DER
//! encoding (`1.2.840.113549.1.9.1=#16056140622e63` for an emailAddress).

use x509_parser::der_parser::asn1_rs::{Any, ToDer};
use x509_parser::x509::X509Name;

/// The RFC 2253 keywords Java's `X500Principal` uses, by OID.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Characters Java escapes with a backslash wherever they appear in a value.
const ESCAPED: &str = ",=+<>#;\"\\";

/// `X500Principal.getName()` (RFC 2253) of `name`.
pub fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::with_capacity(name.as_raw().len());
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, ava) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = ava.attr_type().to_id_string();
            let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
            match (keyword, decode_string(ava.attr_value())) {
                (Some(keyword), Some(text)) => {
                    out.push_str(keyword);
                    out.push('=');
                    escape_into(&text, &mut out);
                }
                (keyword, _) => {
                    out.push_str(keyword.unwrap_or(&oid));
                    out.push('=');
                    hex_value_into(ava.attr_value(), &mut out);
                }
            }
        }
    }
    out
}

/// The text of a DER string value, for the string types Java's `AVA` decodes; `None`
/// for anything else (written as hex).
fn decode_string(value: &Any<'_>) -> Option<String> {
    let data = value.data;
    match value.tag().0 {
        // UTF8String, PrintableString, IA5String.
        0x0c | 0x13 | 0x16 => std::str::from_utf8(data).ok().map(str::to_owned),
        // T61String and GeneralString: Java reads them as ISO-8859-1.
        0x14 | 0x1b => Some(data.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        0x1e => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString: UTF-32BE.
        0x1c => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// Java's `AVA.toRFC2253String` escaping: a backslash before each of [`ESCAPED`], NUL
/// as `\00`, and a backslash before leading and trailing spaces (and carriage returns).
fn escape_into(text: &str, out: &mut String) {
    let mut escaped = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if ESCAPED.contains(c) {
            escaped.push('\\');
            escaped.push(c);
        } else if c == '\0' {
            escaped.push_str("\\00");
        } else {
            escaped.push(c);
        }
    }
    let chars: Vec<char> = escaped.chars().collect();
    let blank = |c: char| c == ' ' || c == '\r';
    let lead = chars.iter().take_while(|&&c| blank(c)).count();
    let trail = chars.len() - chars.iter().rev().take_while(|&&c| blank(c)).count();
    for (i, &c) in chars.iter().enumerate() {
        if i < lead || i >= trail {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `#` and the lowercase hex of the value's whole DER encoding (tag, length, contents).
fn hex_value_into(value: &Any<'_>, out: &mut String) {
    out.push('#');
    // Re-encoding a value that was just parsed cannot fail short of memory; an empty
    // value is written if it ever does, which matches no ACL.
    let der = value.to_der_vec().unwrap_or_default();
    for b in der {
        out.push_str(&format!("{b:02x}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    /// Builds the DER of a Name from `(oid bytes, tag, value)` RDNs, in DER order.
    fn name_der(rdns: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            assert!(body.len() < 128);
            let mut v = vec![tag, body.len() as u8];
            v.extend_from_slice(body);
            v
        }
        let mut seq = Vec::new();
        for (oid, tag, value) in rdns {
            let mut ava = tlv(0x06, oid);
            ava.extend(tlv(*tag, value));
            seq.extend(tlv(0x31, &tlv(0x30, &ava)));
        }
        tlv(0x30, &seq)
    }

    const C: &[u8] = &[0x55, 0x04, 0x06];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    fn format(der: &[u8]) -> String {
        let (_, name) = X509Name::from_der(der).expect("a Name");
        rfc2253(&name)
    }

    /// The vector captured from Java 17 (ZOOKEEPER-SECURITY-OPS.md §2):
    /// `-subj /C=US/O=Example Inc/OU=eng/CN=client/emailAddress=a@b.c`.
    #[test]
    fn java_vector_with_an_email_address() {
        let der = name_der(&[
            (C, 0x13, b"US"),
            (O, 0x0c, b"Example Inc"),
            (OU, 0x0c, b"eng"),
            (CN, 0x0c, b"client"),
            (EMAIL, 0x16, b"a@b.c"),
        ]);
        assert_eq!(
            format(&der),
            "1.2.840.113549.1.9.1=#16056140622e63,CN=client,OU=eng,O=Example Inc,C=US"
        );
    }

    #[test]
    fn special_characters_are_escaped() {
        let der = name_der(&[(O, 0x0c, b" a,b+c=d#e "), (CN, 0x13, b"x;y")]);
        assert_eq!(format(&der), "CN=x\\;y,O=\\ a\\,b\\+c\\=d\\#e\\ ");
    }

    #[test]
    fn a_bmp_string_is_decoded() {
        let der = name_der(&[(CN, 0x1e, &[0x00, b'h', 0x00, 0xe9])]);
        assert_eq!(format(&der), "CN=h\u{e9}");
    }
}
