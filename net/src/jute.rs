//! Jute binary encoding: the primitive types of `zookeeper.jute` and the traits every
//! record implements.
//!
//! Jute is big-endian throughout. `int` is 4 bytes, `long` 8, `boolean` 1. `ustring` and
//! `buffer` are an `int` length followed by the bytes; `vector` is an `int` count followed
//! by the elements. A length or count of −1 means null: ferrokeeper reads a null as empty
//! and always writes the empty form, which every client treats alike.
//!
//! Decoding never panics and never allocates more than the input could describe: a
//! count is checked against the bytes left before anything is reserved.

/// Why a byte sequence is not a valid jute record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the record did.
    #[error("record truncated at byte {at}: needed {needed} more bytes")]
    Truncated {
        /// Offset in the input where the missing field starts.
        at: usize,
        /// Bytes the field needed beyond the end.
        needed: usize,
    },
    /// A length or count was negative (other than −1, null) or larger than the input.
    #[error("unreasonable length {len} at byte {at}")]
    BadLength {
        /// Offset of the length field.
        at: usize,
        /// The length as read.
        len: i32,
    },
    /// A record decoded whole but bytes were left over where none may be.
    #[error("{extra} trailing bytes after the record")]
    Trailing {
        /// How many bytes were left.
        extra: usize,
    },
    /// An opcode, enum or tag value that this protocol does not define.
    #[error("unknown {what} {value}")]
    Unknown {
        /// What kind of value it was (opcode, watcher type, ...).
        what: &'static str,
        /// The value as read.
        value: i32,
    },
}

/// A cursor over one frame's bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unconsumed bytes.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::Trailing { extra }),
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                at: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads a big-endian `int`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a big-endian `long`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// Reads a `boolean`: any non-zero byte is true, as Java's `DataInput` reads it.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// Reads a length prefix for `elem_min` bytes per element: −1 (null) reads as 0, and
    /// a length the rest of the input cannot hold is an error before anything is reserved.
    pub fn read_len(&mut self, elem_min: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(0);
        }
        if len < 0 || (len as usize).saturating_mul(elem_min) > self.remaining() {
            return Err(DecodeError::BadLength { at, len });
        }
        Ok(len as usize)
    }

    /// Reads a `buffer` as a borrowed slice (no copy).
    pub fn read_buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.read_len(1)?;
        self.take(n)
    }

    /// Reads a `ustring`. Invalid UTF-8 is replaced, as Java's `new String(bytes, UTF_8)` does.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        let b = self.read_buffer()?;
        Ok(match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        })
    }
}

/// Writes jute values into a growable buffer.
pub trait Encode {
    /// Appends this value's jute bytes to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// This value's jute bytes in a new vector (tests and cold paths).
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Reads jute values from a [`Reader`].
pub trait Decode: Sized {
    /// The fewest bytes any encoding of this type takes (4 for an `int`, 4 for an empty
    /// `ustring`, the sum of the fields for a record). A `vector` count is checked against
    /// it, so a count the input cannot hold is refused before anything is reserved.
    const ENCODED_BYTES_MIN: usize = 1;

    /// Reads one value.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a whole byte slice, refusing trailing bytes.
    fn from_bytes(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// Appends a jute `buffer` (or `ustring`) from a byte slice.
pub fn write_buffer(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

impl Encode for i32 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}
impl Decode for i32 {
    const ENCODED_BYTES_MIN: usize = 4;
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}
impl Encode for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}
impl Decode for i64 {
    const ENCODED_BYTES_MIN: usize = 8;
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}
impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}
impl Decode for bool {
    const ENCODED_BYTES_MIN: usize = 1;
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}
impl Encode for String {
    fn encode(&self, out: &mut Vec<u8>) {
        write_buffer(out, self.as_bytes());
    }
}
impl Decode for String {
    const ENCODED_BYTES_MIN: usize = 4;
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
}

/// A jute `buffer`: opaque bytes (node data, passwords, auth tokens).
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct Buffer(pub Vec<u8>);

impl Encode for Buffer {
    fn encode(&self, out: &mut Vec<u8>) {
        write_buffer(out, &self.0);
    }
}
impl Decode for Buffer {
    const ENCODED_BYTES_MIN: usize = 4;
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Buffer(r.read_buffer()?.to_vec()))
    }
}
impl From<Vec<u8>> for Buffer {
    fn from(v: Vec<u8>) -> Self {
        Buffer(v)
    }
}
impl From<&[u8]> for Buffer {
    fn from(v: &[u8]) -> Self {
        Buffer(v.to_vec())
    }
}
impl std::ops::Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// A jute `buffer` that may be null (length −1): znode data. ZooKeeper stores a create
/// or setData with null data as null and answers getData with length −1, which Java
/// clients read as `null` (and zkCli prints as "null"), distinct from empty data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct NullableBuffer(pub Option<Vec<u8>>);

impl NullableBuffer {
    /// The bytes, empty for null.
    pub fn bytes(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl Encode for NullableBuffer {
    fn encode(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Some(b) => write_buffer(out, b),
            None => (-1i32).encode(out),
        }
    }
}
impl Decode for NullableBuffer {
    const ENCODED_BYTES_MIN: usize = 4;
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.rest().starts_with(&[0xff; 4]) {
            r.take(4)?;
            return Ok(NullableBuffer(None));
        }
        Ok(NullableBuffer(Some(r.read_buffer()?.to_vec())))
    }
}
impl From<Vec<u8>> for NullableBuffer {
    fn from(v: Vec<u8>) -> Self {
        NullableBuffer(Some(v))
    }
}
impl From<&[u8]> for NullableBuffer {
    fn from(v: &[u8]) -> Self {
        NullableBuffer(Some(v.to_vec()))
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as i32).encode(out);
        for v in self {
            v.encode(out);
        }
    }
}
impl<T: Decode> Decode for Vec<T> {
    const ENCODED_BYTES_MIN: usize = 4;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // Every element takes at least `T::ENCODED_BYTES_MIN` bytes, so the count is bounded
        // by what is left and the reservation by a small multiple of the input's size.
        let n = r.read_len(T::ENCODED_BYTES_MIN.max(1))?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::decode(r)?);
        }
        Ok(v)
    }
}

/// Declares a jute record: a struct whose fields are encoded in declaration order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $( $(#[$fm])* pub $field: $ty ),* }
        impl $crate::jute::Encode for $name {
            #[allow(unused_variables)]
            fn encode(&self, out: &mut Vec<u8>) { $( $crate::jute::Encode::encode(&self.$field, out); )* }
        }
        impl $crate::jute::Decode for $name {
            const ENCODED_BYTES_MIN: usize =
                0 $( + <$ty as $crate::jute::Decode>::ENCODED_BYTES_MIN )*;

            #[allow(unused_variables)]
            fn decode(r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::jute::DecodeError> {
                Ok(Self { $( $field: $crate::jute::Decode::decode(r)? ),* })
            }
        }
    };
}
