//! Stable 128-bit hashing of function arguments.
//!
//! When a cached function has no key template, its cache key is
//! `fn_path:` followed by [`ArgsHasher::finish_hex`] over its arguments. This
//! module defines that hash: **XXH3-128 (seed 0, default secret) of a
//! canonical byte encoding** of the arguments, produced by a private
//! [`serde::Serializer`]. Nothing depends on `std`'s `DefaultHasher`, on
//! pointer width, on endianness or on the iteration order of hash maps, so the
//! same arguments give the same key in every process, on every platform and in
//! every release.
//!
//! # Stability promise
//!
//! The encoding below and the resulting hashes are pinned by golden tests
//! (raw bytes and hex hashes) in this module. Changing either changes every
//! template-less cache key, so it is a **breaking change**: it requires a new
//! format version string (see below) and a major release.
//!
//! # Canonical encoding (format `cachette-args-v1`)
//!
//! The hashed byte stream is the 16 ASCII bytes `cachette-args-v1` followed by
//! the encoding of each argument, in argument order, with nothing between them.
//! [`stable_hash`] is the same stream with exactly one argument. Because every
//! value encoding is self-delimiting (prefix-free), different argument lists
//! never produce the same stream: `("ab", "c")` and `("a", "bc")` differ, and
//! so do the argument lists `(a, b)` and `(b, a)`.
//!
//! Every value starts with a one-byte tag. `len` below is always an unsigned
//! 64-bit little-endian integer (8 bytes). All multi-byte numbers are
//! little-endian.
//!
//! | tag    | serde data model                               | bytes after the tag |
//! |--------|------------------------------------------------|---------------------|
//! | `0x00` | unit `()`, unit struct                         | none |
//! | `0x01` | bool                                           | `0x00` (false) or `0x01` (true) |
//! | `0x02` | every integer type (`i8`..`i128`, `u8`..`u128`) | sign byte, then 16 bytes: `0x00` + the value as `u128` LE if it is >= 0, `0x01` + the value as `i128` LE (two's complement) if it is < 0 |
//! | `0x03` | `f32`, `f64`                                   | 8 bytes: the IEEE-754 bits of the value as `f64`, LE (see float rules) |
//! | `0x04` | `str`, `String`, `char`                        | `len` of the UTF-8 bytes, then the UTF-8 bytes |
//! | `0x05` | bytes (`serialize_bytes`, e.g. `serde_bytes`)   | `len`, then the bytes |
//! | `0x06` | `None`                                         | none |
//! | `0x07` | `Some(x)`                                      | encoding of `x` |
//! | `0x08` | seq, tuple, tuple struct, array                | for each element in order: `0x01` + its encoding; then `0x00` |
//! | `0x09` | map, struct                                    | for each entry, in sorted order: `0x01` + encoding of the key + encoding of the value; then `0x00` |
//! | `0x0A` | enum variant                                   | the variant name encoded as a string (`0x04` ...), then the payload encoding |
//!
//! Normalisation rules, so that values equal in meaning hash equally:
//!
//! * **Integers** are encoded by numeric value, whatever their Rust type:
//!   `5u8`, `5u64`, `5i32` and `5u128` all encode as
//!   `02 00 05 00 .. 00` (18 bytes); `-1i8` and `-1i64` both encode as
//!   `02 01 ff .. ff`.
//! * **Floats**: `f32` is widened to `f64` (exactly; note that `0.1f32` is not
//!   `0.1f64`). `-0.0` is encoded as `+0.0`. Every NaN (any sign, any payload)
//!   is encoded as the bits `0x7ff8_0000_0000_0000`. Infinities keep their
//!   bits. A float is never equal to an integer: `1.0` and `1` differ.
//! * **`char`** is encoded as the one-character string: `'a'` equals `"a"`.
//! * **Strings**: `&str`, `String`, `Box<str>`, `Cow<str>` are all the same.
//!   Bytes (`0x05`) are distinct from a sequence of `u8` (`0x08`), which is
//!   what a plain `Vec<u8>` serializes as.
//! * **Sequences** keep their order. Tuples, tuple structs, arrays, slices and
//!   `Vec`s share the sequence encoding: `(1, 2)`, `[1, 2]` and `vec![1, 2]`
//!   are equal.
//! * **Maps** are order-independent: each entry (key encoding immediately
//!   followed by value encoding) is encoded on its own, and the entries are
//!   written in ascending byte-wise lexicographic order of those entry
//!   encodings (unsigned bytes, as `[u8]`'s `Ord`). Duplicate keys, if a
//!   `Serialize` impl emits them, are kept. So a `HashMap` hashes the same
//!   whatever its capacity or insertion order.
//! * **Structs** are encoded exactly like a map whose keys are the field names
//!   (as strings), with the same entry sorting. Reordering fields in the source
//!   therefore does not change keys, and a struct equals a map with the same
//!   string keys and values. Note that the order is the order of the *encoded*
//!   entries (tag, little-endian length, name, value), not alphabetical order
//!   of the names. Struct **type names are not encoded**: renaming a type does
//!   not change keys (but renaming a field, or `#[serde(rename)]`, does).
//!   Fields skipped by serde (`skip_serializing_if`) are simply absent.
//! * **Enums** (serde's externally tagged representation) encode the variant
//!   **name**, never its index, so reordering or inserting variants does not
//!   change keys; the enum's type name is not encoded. The payload is `0x00`
//!   for a unit variant, the inner value for a newtype variant, a sequence for
//!   a tuple variant and a map for a struct variant. Consequently `E::A` equals
//!   `E::A(())`. Internally tagged / untagged enums are whatever serde makes
//!   of them (maps, etc.).
//! * **Newtype structs are transparent**: `UserId(5)` encodes exactly like
//!   `5`. Unit structs encode like `()`.
//! * `None` (`0x06`), `Some(())` (`0x07 0x00`), `()` (`0x00`) and `Some(0)` are
//!   all distinct from each other.
//! * The serializer reports `is_human_readable() == false`, so types with a
//!   compact form (e.g. `Uuid`, `IpAddr`) use it.
//!
//! Canonical bytes of a few values (after the `cachette-args-v1` header):
//!
//! ```text
//! true          01 01
//! "ab"          04 02 00 00 00 00 00 00 00 61 62
//! Some(())      07 00
//! vec![true]    08 01 01 01 00
//! ```
//!
//! # Sets are not canonicalised
//!
//! serde cannot tell a set from a sequence, so a `HashSet` is hashed in its
//! iteration order, which differs between processes. Use a `BTreeSet` (or a
//! sorted `Vec`) for set-valued arguments. `HashMap` is fine.
//!
//! # Cost
//!
//! Scalars, strings, options, sequences and enums are fed straight into a
//! streaming XXH3 state without allocating. Maps and structs must sort their
//! entries, so they are encoded into a scratch buffer that is reused (per
//! thread) across calls; in steady state hashing does not allocate.
//!
//! # Errors
//!
//! Hashing never panics. A `Serialize` impl that fails (e.g. with
//! `serde::ser::Error::custom`) makes [`stable_hash`] / [`ArgsHasher::arg`]
//! return [`HashError`].

use std::cell::Cell;
use std::fmt;

use serde::ser::{self, Serialize};
use xxhash_rust::xxh3::Xxh3;

/// Format/version header fed to the hasher before any argument.
const FORMAT_HEADER: &[u8] = b"cachette-args-v1";

const TAG_UNIT: u8 = 0x00;
const TAG_BOOL: u8 = 0x01;
const TAG_INT: u8 = 0x02;
const TAG_FLOAT: u8 = 0x03;
const TAG_STR: u8 = 0x04;
const TAG_BYTES: u8 = 0x05;
const TAG_NONE: u8 = 0x06;
const TAG_SOME: u8 = 0x07;
const TAG_SEQ: u8 = 0x08;
const TAG_MAP: u8 = 0x09;
const TAG_VARIANT: u8 = 0x0A;

/// Marks "one more element/entry follows" in sequences and maps.
const ITEM: u8 = 0x01;
/// Terminates a sequence or map.
const END: u8 = 0x00;

/// The single NaN bit pattern every NaN is normalised to.
const CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

/// Scratch buffers larger than this are not kept for reuse by the thread.
const MAX_RETAINED_SCRATCH: usize = 64 * 1024;

/// Error returned when an argument cannot be hashed, i.e. its `Serialize`
/// implementation failed or misused the serializer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compute a stable hash of the cache key arguments: {0}")]
pub struct HashError(String);

impl HashError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }

    /// The underlying message (from the `Serialize` impl or the serializer).
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl ser::Error for HashError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Incremental hasher over several arguments (the macro hashes each argument
/// in order).
///
/// The result is XXH3-128 of `cachette-args-v1` followed by the canonical
/// encoding of each argument (see the [module documentation](self)).
///
/// ```
/// use cachette_runtime::keys::hash::{stable_hash_hex, ArgsHasher};
/// use cachette_runtime::keys::{Key, KeyBuilder};
/// use std::collections::HashMap;
///
/// # fn main() -> Result<(), cachette_runtime::keys::hash::HashError> {
/// let mut filters = HashMap::new();
/// filters.insert("status", "active");
/// filters.insert("region", "eu");
///
/// let mut h = ArgsHasher::new();
/// h.arg(&42u64)?.arg("alice")?.arg(&filters)?;
/// let mut key = KeyBuilder::new();
/// key.lit("my_crate::users::search:").arg(&h.finish_hex());
/// let key = Key::from(key); // for `Cache::get`, `Cache::delete`...
/// assert_eq!(key.as_str().len(), "my_crate::users::search:".len() + 32);
///
/// // Argument order matters; the integer type does not.
/// let mut swapped = ArgsHasher::new();
/// swapped.arg("alice")?.arg(&42u64)?.arg(&filters)?;
/// assert_ne!(h.finish(), swapped.finish());
///
/// let mut narrow = ArgsHasher::new();
/// narrow.arg(&42u8)?.arg(&String::from("alice"))?.arg(&filters)?;
/// assert_eq!(h.finish(), narrow.finish());
///
/// // One argument is the same as `stable_hash`.
/// let mut one = ArgsHasher::new();
/// one.arg(&7i32)?;
/// assert_eq!(one.finish_hex(), stable_hash_hex(&7i32)?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ArgsHasher {
    state: Xxh3,
}

impl ArgsHasher {
    /// A hasher that has seen no argument yet (only the format header).
    pub fn new() -> Self {
        let mut state = Xxh3::new();
        state.update(FORMAT_HEADER);
        Self { state }
    }

    /// Feeds one more argument.
    ///
    /// On error the hasher is left exactly as it was before the call.
    pub fn arg<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<&mut Self, HashError> {
        let mut state = self.state.clone();
        with_scratch(|scratch| {
            let mut enc = Encoder {
                out: Out::Hash {
                    hasher: &mut state,
                    scratch,
                },
            };
            value.serialize(&mut enc)
        })?;
        self.state = state;
        Ok(self)
    }

    /// The 128-bit hash of the arguments fed so far. Does not consume or
    /// reset the hasher.
    pub fn finish(&self) -> u128 {
        self.state.digest128()
    }

    /// [`finish`](Self::finish) as 32 lowercase hex digits, most significant
    /// digit first (big-endian order of the `u128`).
    pub fn finish_hex(&self) -> String {
        format!("{:032x}", self.finish())
    }
}

impl Default for ArgsHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ArgsHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgsHasher")
            .field("current", &format_args!("{:032x}", self.finish()))
            .finish()
    }
}

/// Hash of one value (same as `ArgsHasher::new().arg(v)?.finish()`).
///
/// ```
/// use cachette_runtime::keys::hash::{stable_hash, stable_hash_hex, ArgsHasher};
/// use std::collections::{BTreeMap, HashMap};
///
/// # fn main() -> Result<(), cachette_runtime::keys::hash::HashError> {
/// // Integers hash by value, whatever their type.
/// assert_eq!(stable_hash(&5u8)?, stable_hash(&5i64)?);
/// // Maps hash by content, whatever their kind or iteration order.
/// let hm: HashMap<&str, i32> = [("a", 1), ("b", 2)].into_iter().collect();
/// let bm: BTreeMap<&str, i32> = [("b", 2), ("a", 1)].into_iter().collect();
/// assert_eq!(stable_hash(&hm)?, stable_hash(&bm)?);
/// // Encodings are prefix-free.
/// assert_ne!(stable_hash(&("ab", "c"))?, stable_hash(&("a", "bc"))?);
/// // 32 lowercase hex digits.
/// let hex = stable_hash_hex("hello")?;
/// assert_eq!(hex.len(), 32);
/// assert_eq!(hex, ArgsHasher::new().arg("hello")?.finish_hex());
/// # Ok(())
/// # }
/// ```
pub fn stable_hash<T: Serialize + ?Sized>(value: &T) -> Result<u128, HashError> {
    let mut hasher = ArgsHasher::new();
    hasher.arg(value)?;
    Ok(hasher.finish())
}

/// [`stable_hash`] as 32 lowercase hex digits (big-endian order of the `u128`).
pub fn stable_hash_hex<T: Serialize + ?Sized>(value: &T) -> Result<String, HashError> {
    let mut hasher = ArgsHasher::new();
    hasher.arg(value)?;
    Ok(hasher.finish_hex())
}

/// The canonical encoding of one value (without the format header).
#[cfg(test)]
fn canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, HashError> {
    let mut scratch = Scratch::default();
    let mut enc = Encoder {
        out: Out::Arena(&mut scratch),
    };
    value.serialize(&mut enc)?;
    if !scratch.ranges.is_empty() {
        return Err(HashError::new("internal error: unterminated map entries"));
    }
    Ok(scratch.bytes)
}

// ---------------------------------------------------------------------------
// Scratch space
// ---------------------------------------------------------------------------

/// Buffer in which map and struct entries are encoded before being sorted.
///
/// Nested maps share it: a map appends its entries after whatever is already
/// there and records each entry's byte range in `ranges`; when it ends, it
/// writes its sorted entries either into the hasher (then truncates), or, when
/// it is itself inside a buffered entry, back over its own region.
#[derive(Default)]
struct Scratch {
    bytes: Vec<u8>,
    ranges: Vec<(usize, usize)>,
}

impl Scratch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ranges.clear();
    }
}

thread_local! {
    static SCRATCH: Cell<Scratch> = const {
        Cell::new(Scratch { bytes: Vec::new(), ranges: Vec::new() })
    };
}

/// Runs `f` with this thread's reusable scratch buffer (or a fresh one when
/// it is unavailable, e.g. re-entrant use or thread teardown).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut scratch = SCRATCH.try_with(Cell::take).unwrap_or_default();
    scratch.clear();
    let result = f(&mut scratch);
    scratch.clear();
    if scratch.bytes.capacity() <= MAX_RETAINED_SCRATCH
        && scratch.ranges.capacity() <= MAX_RETAINED_SCRATCH
    {
        // Ignoring failure is fine: the buffer is just not reused.
        let _ = SCRATCH.try_with(|cell| cell.set(scratch));
    }
    result
}

// ---------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------

/// Where encoded bytes go.
enum Out<'s> {
    /// Straight into the hash state; `scratch` is used only by maps.
    Hash {
        hasher: &'s mut Xxh3,
        scratch: &'s mut Scratch,
    },
    /// Appended to the scratch buffer (inside a map entry being buffered).
    Arena(&'s mut Scratch),
}

struct Encoder<'s> {
    out: Out<'s>,
}

impl<'s> Encoder<'s> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        match &mut self.out {
            Out::Hash { hasher, .. } => hasher.update(bytes),
            Out::Arena(scratch) => scratch.bytes.extend_from_slice(bytes),
        }
    }

    fn scratch(&mut self) -> &mut Scratch {
        match &mut self.out {
            Out::Hash { scratch, .. } => scratch,
            Out::Arena(scratch) => scratch,
        }
    }

    fn write_u128(&mut self, v: u128) {
        let mut buf = [0u8; 18];
        buf[0] = TAG_INT;
        buf[1] = 0x00;
        buf[2..].copy_from_slice(&v.to_le_bytes());
        self.write(&buf);
    }

    fn write_i128(&mut self, v: i128) {
        match u128::try_from(v) {
            Ok(non_negative) => self.write_u128(non_negative),
            Err(_) => {
                let mut buf = [0u8; 18];
                buf[0] = TAG_INT;
                buf[1] = 0x01;
                buf[2..].copy_from_slice(&v.to_le_bytes());
                self.write(&buf);
            }
        }
    }

    fn write_f64(&mut self, v: f64) {
        let bits = if v.is_nan() {
            CANONICAL_NAN_BITS
        } else if v == 0.0 {
            0 // both +0.0 and -0.0
        } else {
            v.to_bits()
        };
        let mut buf = [0u8; 9];
        buf[0] = TAG_FLOAT;
        buf[1..].copy_from_slice(&bits.to_le_bytes());
        self.write(&buf);
    }

    fn write_len_prefixed(&mut self, tag: u8, bytes: &[u8]) {
        let mut head = [0u8; 9];
        head[0] = tag;
        head[1..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.write(&head);
        self.write(bytes);
    }

    fn write_str(&mut self, s: &str) {
        self.write_len_prefixed(TAG_STR, s.as_bytes());
    }

    fn begin_map<'a>(&'a mut self) -> MapEncoder<'a, 's> {
        self.write(&[TAG_MAP]);
        let scratch = self.scratch();
        let start = scratch.bytes.len();
        let ranges_start = scratch.ranges.len();
        MapEncoder {
            enc: self,
            start,
            ranges_start,
            pending_key: None,
        }
    }

    fn begin_variant(&mut self, variant: &str) {
        self.write(&[TAG_VARIANT]);
        self.write_str(variant);
    }
}

impl<'a, 's> ser::Serializer for &'a mut Encoder<'s> {
    type Ok = ();
    type Error = HashError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = MapEncoder<'a, 's>;
    type SerializeStruct = MapEncoder<'a, 's>;
    type SerializeStructVariant = MapEncoder<'a, 's>;

    fn serialize_bool(self, v: bool) -> Result<(), HashError> {
        self.write(&[TAG_BOOL, u8::from(v)]);
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), HashError> {
        self.write_i128(i128::from(v));
        Ok(())
    }

    fn serialize_i16(self, v: i16) -> Result<(), HashError> {
        self.write_i128(i128::from(v));
        Ok(())
    }

    fn serialize_i32(self, v: i32) -> Result<(), HashError> {
        self.write_i128(i128::from(v));
        Ok(())
    }

    fn serialize_i64(self, v: i64) -> Result<(), HashError> {
        self.write_i128(i128::from(v));
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), HashError> {
        self.write_i128(v);
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), HashError> {
        self.write_u128(u128::from(v));
        Ok(())
    }

    fn serialize_u16(self, v: u16) -> Result<(), HashError> {
        self.write_u128(u128::from(v));
        Ok(())
    }

    fn serialize_u32(self, v: u32) -> Result<(), HashError> {
        self.write_u128(u128::from(v));
        Ok(())
    }

    fn serialize_u64(self, v: u64) -> Result<(), HashError> {
        self.write_u128(u128::from(v));
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), HashError> {
        self.write_u128(v);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), HashError> {
        self.write_f64(f64::from(v));
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), HashError> {
        self.write_f64(v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), HashError> {
        let mut buf = [0u8; 4];
        self.write_str(v.encode_utf8(&mut buf));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), HashError> {
        self.write_str(v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), HashError> {
        self.write_len_prefixed(TAG_BYTES, v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), HashError> {
        self.write(&[TAG_NONE]);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), HashError> {
        self.write(&[TAG_SOME]);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), HashError> {
        self.write(&[TAG_UNIT]);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), HashError> {
        self.write(&[TAG_UNIT]);
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<(), HashError> {
        self.begin_variant(variant);
        self.write(&[TAG_UNIT]);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), HashError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), HashError> {
        self.begin_variant(variant);
        value.serialize(self)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, HashError> {
        self.write(&[TAG_SEQ]);
        Ok(self)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self, HashError> {
        self.write(&[TAG_SEQ]);
        Ok(self)
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, HashError> {
        self.write(&[TAG_SEQ]);
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, HashError> {
        self.begin_variant(variant);
        self.write(&[TAG_SEQ]);
        Ok(self)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapEncoder<'a, 's>, HashError> {
        Ok(self.begin_map())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<MapEncoder<'a, 's>, HashError> {
        Ok(self.begin_map())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<MapEncoder<'a, 's>, HashError> {
        self.begin_variant(variant);
        Ok(self.begin_map())
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

// --- Sequences (streamed) ---------------------------------------------------

impl Encoder<'_> {
    fn seq_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        self.write(&[ITEM]);
        value.serialize(self)
    }

    fn seq_end(&mut self) {
        self.write(&[END]);
    }
}

impl ser::SerializeSeq for &mut Encoder<'_> {
    type Ok = ();
    type Error = HashError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        self.seq_element(value)
    }

    fn end(self) -> Result<(), HashError> {
        self.seq_end();
        Ok(())
    }
}

impl ser::SerializeTuple for &mut Encoder<'_> {
    type Ok = ();
    type Error = HashError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        self.seq_element(value)
    }

    fn end(self) -> Result<(), HashError> {
        self.seq_end();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for &mut Encoder<'_> {
    type Ok = ();
    type Error = HashError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        self.seq_element(value)
    }

    fn end(self) -> Result<(), HashError> {
        self.seq_end();
        Ok(())
    }
}

impl ser::SerializeTupleVariant for &mut Encoder<'_> {
    type Ok = ();
    type Error = HashError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        self.seq_element(value)
    }

    fn end(self) -> Result<(), HashError> {
        self.seq_end();
        Ok(())
    }
}

// --- Maps and structs (buffered, sorted) -------------------------------------

/// Encodes the entries of a map or struct into the scratch buffer, then emits
/// them sorted.
struct MapEncoder<'a, 's> {
    enc: &'a mut Encoder<'s>,
    /// Offset in `scratch.bytes` where this map's entries begin.
    start: usize,
    /// Index in `scratch.ranges` of this map's first entry.
    ranges_start: usize,
    /// Start offset of the entry whose key was written but not its value.
    pending_key: Option<usize>,
}

impl MapEncoder<'_, '_> {
    /// Serializes `value` appended to the scratch buffer.
    fn buffer<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        let mut sub = Encoder {
            out: Out::Arena(self.enc.scratch()),
        };
        value.serialize(&mut sub)
    }

    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), HashError> {
        if self.pending_key.is_some() {
            return Err(HashError::new(
                "serialize_key called twice without serialize_value in between",
            ));
        }
        let entry_start = self.enc.scratch().bytes.len();
        self.pending_key = Some(entry_start);
        self.buffer(key)
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        let Some(entry_start) = self.pending_key.take() else {
            return Err(HashError::new(
                "serialize_value called without a preceding serialize_key",
            ));
        };
        self.buffer(value)?;
        let scratch = self.enc.scratch();
        let entry_end = scratch.bytes.len();
        scratch.ranges.push((entry_start, entry_end));
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), HashError> {
        self.key(name)?;
        self.value(value)
    }

    fn finish(self) -> Result<(), HashError> {
        if self.pending_key.is_some() {
            return Err(HashError::new("map ended with a key that has no value"));
        }
        let MapEncoder {
            enc,
            start,
            ranges_start,
            ..
        } = self;
        let invariant = || HashError::new("internal error: inconsistent map scratch buffer");
        match &mut enc.out {
            Out::Hash { hasher, scratch } => {
                let Scratch { bytes, ranges } = &mut **scratch;
                let entries = ranges.get_mut(ranges_start..).ok_or_else(invariant)?;
                sort_entries(bytes, entries);
                for &(s, e) in entries.iter() {
                    let entry = bytes.get(s..e).ok_or_else(invariant)?;
                    hasher.update(&[ITEM]);
                    hasher.update(entry);
                }
                hasher.update(&[END]);
                bytes.truncate(start);
                ranges.truncate(ranges_start);
            }
            Out::Arena(scratch) => {
                let Scratch { bytes, ranges } = &mut **scratch;
                let entries = ranges.get_mut(ranges_start..).ok_or_else(invariant)?;
                sort_entries(bytes, entries);
                // Write the sorted encoding after the unsorted entries, then
                // move it down over them.
                let out_start = bytes.len();
                if start > out_start {
                    return Err(invariant());
                }
                for &(s, e) in entries.iter() {
                    if s > e || e > out_start {
                        return Err(invariant());
                    }
                    bytes.push(ITEM);
                    bytes.extend_from_within(s..e);
                }
                bytes.push(END);
                let out_len = bytes.len().saturating_sub(out_start);
                bytes.copy_within(out_start.., start);
                bytes.truncate(start.saturating_add(out_len));
                ranges.truncate(ranges_start);
            }
        }
        Ok(())
    }
}

/// Sorts entry ranges by the bytes they cover (unsigned lexicographic order).
fn sort_entries(bytes: &[u8], entries: &mut [(usize, usize)]) {
    entries.sort_unstable_by(|a, b| bytes.get(a.0..a.1).cmp(&bytes.get(b.0..b.1)));
}

impl ser::SerializeMap for MapEncoder<'_, '_> {
    type Ok = ();
    type Error = HashError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), HashError> {
        self.key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        self.value(value)
    }

    fn end(self) -> Result<(), HashError> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapEncoder<'_, '_> {
    type Ok = ();
    type Error = HashError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), HashError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), HashError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapEncoder<'_, '_> {
    type Ok = ();
    type Error = HashError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), HashError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), HashError> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    // Test helpers: a failed hash fails the test through the assertion (these values are
    // the tests' own, never Redis replies or user input).
    fn h<T: Serialize + ?Sized>(v: &T) -> String {
        let r = stable_hash_hex(v);
        assert!(r.is_ok(), "hashing failed: {r:?}");
        r.unwrap_or_default()
    }

    fn bytes<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        let r = canonical_bytes(v);
        assert!(r.is_ok(), "encoding failed: {r:?}");
        r.unwrap_or_default()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // ---- fixtures ----------------------------------------------------------

    #[derive(Serialize)]
    struct User {
        id: u64,
        name: String,
        active: bool,
        score: f64,
        tags: Vec<String>,
    }

    fn user() -> User {
        User {
            id: 42,
            name: "alice".to_owned(),
            active: true,
            score: 1.5,
            tags: vec!["admin".to_owned(), "beta".to_owned()],
        }
    }

    /// Same fields as `User`, declared in a different order, different type name.
    #[derive(Serialize)]
    struct UserReordered {
        tags: Vec<String>,
        score: f64,
        active: bool,
        name: String,
        id: u64,
    }

    fn user_reordered() -> UserReordered {
        UserReordered {
            tags: vec!["admin".to_owned(), "beta".to_owned()],
            score: 1.5,
            active: true,
            name: "alice".to_owned(),
            id: 42,
        }
    }

    #[derive(Clone, Serialize)]
    enum Shape {
        Empty,
        Circle(f64),
        Rect { w: u32, h: u32 },
        Pair(i8, i8),
    }

    #[derive(Serialize)]
    enum ShapeReordered {
        Pair(i64, i64),
        Rect { h: u64, w: u64 },
        Circle(f32),
        Empty,
    }

    #[derive(Clone, Serialize)]
    struct Query {
        filters: HashMap<String, String>,
        page: Option<u32>,
        shape: Shape,
    }

    fn query_with(filters: HashMap<String, String>) -> Query {
        Query {
            filters,
            page: Some(3),
            shape: Shape::Rect { w: 3, h: 4 },
        }
    }

    fn filters() -> HashMap<String, String> {
        [("status", "active"), ("region", "eu"), ("plan", "pro")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[derive(Serialize)]
    struct UserId(u64);

    #[derive(Serialize)]
    struct Marker;

    #[derive(Serialize)]
    struct Point(i32, i32);

    // ---- golden values -----------------------------------------------------

    #[test]
    fn golden_canonical_bytes() {
        // 5u8: INT, sign 0, 16 bytes LE.
        assert_eq!(hex(&bytes(&5u8)), "020005000000000000000000000000000000");
        // -1i32: INT, sign 1, i128 two's complement LE.
        assert_eq!(hex(&bytes(&-1i32)), "0201ffffffffffffffffffffffffffffffff");
        // "ab": STR, u64 LE length, UTF-8.
        assert_eq!(hex(&bytes("ab")), "0402000000000000006162");
        // Small values from the module docs.
        assert_eq!(hex(&bytes(&true)), "0101");
        assert_eq!(hex(&bytes(&Some(()))), "0700");
        assert_eq!(hex(&bytes(&vec![true])), "0801010100");
        // f64 1.5, and -0.0 as +0.0.
        assert_eq!(hex(&bytes(&1.5f64)), "03000000000000f83f");
        assert_eq!(hex(&bytes(&-0.0f64)), "030000000000000000");
        assert_eq!(hex(&bytes(&f64::NAN)), "03000000000000f87f");
        // Enum unit variant: VARIANT, name as STR, UNIT.
        assert_eq!(
            bytes(&Shape::Empty),
            [
                0x0a, 0x04, 5, 0, 0, 0, 0, 0, 0, 0, b'E', b'm', b'p', b't', b'y', 0x00
            ]
        );
        // Struct {b: true, a: ()} -> MAP, entries sorted by encoded bytes: "a" < "b".
        #[derive(Serialize)]
        struct Tiny {
            b: bool,
            a: (),
        }
        let expected: Vec<u8> = [
            &[0x09, 0x01][..],
            &[0x04, 1, 0, 0, 0, 0, 0, 0, 0, b'a', 0x00],
            &[0x01],
            &[0x04, 1, 0, 0, 0, 0, 0, 0, 0, b'b', 0x01, 0x01],
            &[0x00],
        ]
        .concat();
        assert_eq!(bytes(&Tiny { b: true, a: () }), expected);
    }

    #[test]
    fn golden_hashes() {
        let mut btree = BTreeMap::new();
        btree.insert("one".to_owned(), 1u32);
        btree.insert("two".to_owned(), 2);
        btree.insert("three".to_owned(), 3);

        let cases: Vec<(&str, String, &str)> = vec![
            ("u64", h(&42u64), "963b7d40b0b28f5b66c6aaf1b31565fd"),
            (
                "i64 negative",
                h(&-42i64),
                "2632d3fcf57218f8198caa1723bc599b",
            ),
            (
                "string",
                h("hello world"),
                "0a6f51669a8fa4197cf700e26d3add9d",
            ),
            ("empty string", h(""), "1e469db9fce450e32f1cfc53e955db09"),
            ("bool true", h(&true), "6b7ae0dbeeb56ea26d03318feb427c5a"),
            ("bool false", h(&false), "649ff4ad9b212ab85cb422d738632ed8"),
            ("f64", h(&3.25f64), "19524b20a8cce3f931377fb0007ac997"),
            ("f64 -0.0", h(&-0.0f64), "6773d32df26a63d0495ea607a70913a7"),
            ("f64 NaN", h(&f64::NAN), "7b0c65642945e5207ee579a814efd3f0"),
            ("none", h(&None::<u32>), "9156c3f114b0a9f987a38c632a7f7faf"),
            ("some", h(&Some(7u32)), "4aee324f0f7107c5bcc9d2ad3021a739"),
            ("unit", h(&()), "d9218679d93252e53441eaa9033e9826"),
            (
                "vec",
                h(&vec![1u32, 2, 3]),
                "60f164ed686bf48b8afe8655c3f550ba",
            ),
            (
                "tuple",
                h(&(1u8, "x", false)),
                "f42b3dda9c64a12aa2e4ed2856a85c68",
            ),
            ("struct", h(&user()), "24639f53f5d8010462c4fd606a896019"),
            (
                "enum unit",
                h(&Shape::Empty),
                "6c83bf6c740d13354adc144143fb94db",
            ),
            (
                "enum newtype",
                h(&Shape::Circle(2.0)),
                "1f4cfc0823130c74b43839ad2620cdb4",
            ),
            (
                "enum struct",
                h(&Shape::Rect { w: 3, h: 4 }),
                "1feb8b33c888e5d00efdbda085bba127",
            ),
            (
                "enum tuple",
                h(&Shape::Pair(-1, 1)),
                "a03d6eaa9d306113eb811c530e6d8bda",
            ),
            ("btreemap", h(&btree), "d0164158aa30cb907d5698638a3cc887"),
            (
                "nested struct with hashmap",
                h(&query_with(filters())),
                "469182e86d66a93becfd43c7ae25808d",
            ),
            (
                "bytes",
                h(&Bytes(b"\x00\x01\xff")),
                "ad2996664971cfe6c796c1a7731a8a2f",
            ),
        ];
        let mut failures = Vec::new();
        for (name, got, want) in &cases {
            if got != want {
                failures.push(format!("(\"{name}\", \"{got}\"),"));
            }
        }
        assert!(
            failures.is_empty(),
            "golden mismatches:\n{}",
            failures.join("\n")
        );
    }

    struct Bytes<'a>(&'a [u8]);

    impl Serialize for Bytes<'_> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[test]
    fn golden_args_hasher() {
        let mut hasher = ArgsHasher::new();
        assert_eq!(hasher.finish_hex(), "e710a6270960ac9d431c92a6696bdf30");
        let result = hasher.arg(&42u64).and_then(|h| h.arg("alice"));
        assert!(result.is_ok());
        assert_eq!(hasher.finish_hex(), "b116e6e10e2c12afa18b770246528f33");
    }

    /// The streamed hash is exactly XXH3-128 (seed 0) of header + canonical bytes.
    #[test]
    fn streaming_matches_one_shot_xxh3_of_canonical_bytes() {
        let mut nested: HashMap<String, HashMap<u32, Vec<Query>>> = HashMap::new();
        for i in 0..5u32 {
            let inner = (0..4u32)
                .map(|j| (j * 7 + i, vec![query_with(filters()); 2]))
                .collect();
            nested.insert(format!("k{i}"), inner);
        }
        fn check<T: Serialize + ?Sized>(v: &T) {
            let mut stream = FORMAT_HEADER.to_vec();
            stream.extend_from_slice(&bytes(v));
            let one_shot = xxhash_rust::xxh3::xxh3_128(&stream);
            assert_eq!(stable_hash(v).ok(), Some(one_shot));
        }
        check(&42u64);
        check("hello");
        check(&user());
        check(&query_with(filters()));
        check(&nested);
        check(&vec![Some(user()), None]);
        check(&Shape::Rect { w: 1, h: 2 });
        // Long enough to cross XXH3's internal buffer (> 240 bytes and > 1 KiB).
        check(&"x".repeat(5000));
        check(&(0..500u32).collect::<Vec<_>>());
    }

    #[test]
    fn multiple_args_equal_stream_of_encodings() {
        let mut hasher = ArgsHasher::new();
        assert!(hasher.arg(&1u8).and_then(|h| h.arg(&user())).is_ok());
        let mut stream = FORMAT_HEADER.to_vec();
        stream.extend_from_slice(&bytes(&1u8));
        stream.extend_from_slice(&bytes(&user()));
        assert_eq!(hasher.finish(), xxhash_rust::xxh3::xxh3_128(&stream));
    }

    // ---- map order independence -------------------------------------------

    #[test]
    fn hashmap_insertion_order_and_capacity_do_not_matter() {
        let mut ascending = HashMap::new();
        for i in 1..1000u32 {
            ascending.insert(i, format!("v{i}"));
        }
        let mut descending = HashMap::new();
        for i in (1..1000u32).rev() {
            descending.insert(i, format!("v{i}"));
        }
        let mut big = HashMap::with_capacity(10_000);
        for i in (1..1000u32)
            .filter(|i| i % 2 == 0)
            .chain((1..1000).filter(|i| i % 2 == 1))
        {
            big.insert(i, format!("v{i}"));
        }
        let btree: BTreeMap<u32, String> = ascending.clone().into_iter().collect();
        let expected = h(&btree);
        assert_eq!(h(&ascending), expected);
        assert_eq!(h(&descending), expected);
        assert_eq!(h(&big), expected);
        // Sanity: the iteration orders really differ for at least one pair.
        let a: Vec<_> = ascending.keys().copied().collect();
        let b: Vec<_> = big.keys().copied().collect();
        assert_ne!(a, b);
    }

    #[test]
    fn struct_containing_hashmap_is_order_independent() {
        let mut f1 = HashMap::new();
        let mut f2 = HashMap::with_capacity(10_000);
        let pairs: Vec<(String, String)> = (0..200)
            .map(|i| (format!("key{i}"), format!("{i}")))
            .collect();
        for (k, v) in &pairs {
            f1.insert(k.clone(), v.clone());
        }
        for (k, v) in pairs.iter().rev() {
            f2.insert(k.clone(), v.clone());
        }
        assert_eq!(h(&query_with(f1.clone())), h(&query_with(f2.clone())));
        // Also as a map value inside a map inside a vec (exercises in-place sorting).
        let nest1: Vec<BTreeMap<u8, Query>> = vec![[(1, query_with(f1))].into_iter().collect()];
        let nest2: Vec<HashMap<u8, Query>> = vec![[(1, query_with(f2))].into_iter().collect()];
        assert_eq!(h(&nest1), h(&nest2));
    }

    #[test]
    fn nested_hashmaps_are_order_independent() {
        let build = |rev: bool| {
            let mut outer: HashMap<String, HashMap<String, Vec<u32>>> = HashMap::new();
            let mut idx: Vec<u32> = (0..50).collect();
            if rev {
                idx.reverse();
            }
            for i in &idx {
                let mut inner = HashMap::new();
                for j in &idx {
                    inner.insert(format!("{j}"), vec![*i, *j]);
                }
                outer.insert(format!("o{i}"), inner);
            }
            outer
        };
        assert_eq!(h(&build(false)), h(&build(true)));
    }

    #[test]
    fn map_with_different_values_differs() {
        let a: BTreeMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
        let b: BTreeMap<&str, u32> = [("a", 2), ("b", 1)].into_iter().collect();
        let c: BTreeMap<&str, u32> = [("a", 1)].into_iter().collect();
        assert_ne!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
        let empty: BTreeMap<u8, u8> = BTreeMap::new();
        assert_ne!(h(&empty), h(&()));
        assert_ne!(h(&empty), h(&Vec::<u8>::new()));
    }

    // ---- prefix-freeness and distinctness ----------------------------------

    #[test]
    fn encodings_are_prefix_free() {
        assert_ne!(h(&("ab", "c")), h(&("a", "bc")));
        assert_ne!(h(&vec!["ab", "c"]), h(&vec!["a", "bc"]));
        assert_ne!(h(&vec![vec![1u8], vec![]]), h(&vec![vec![], vec![1u8]]));
        assert_ne!(h(&(Some(()), ())), h(&((), Some(()))));

        let two = |a: &str, b: &str| {
            let mut hasher = ArgsHasher::new();
            assert!(hasher.arg(a).and_then(|h| h.arg(b)).is_ok());
            hasher.finish()
        };
        assert_ne!(two("ab", "c"), two("a", "bc"));
        assert_ne!(two("a", "b"), two("b", "a"));
        assert_ne!(two("a", "b"), stable_hash("ab").ok().unwrap_or_default());
        // Two args vs one tuple arg vs one arg.
        assert_ne!(
            two("a", "b"),
            stable_hash(&("a", "b")).ok().unwrap_or_default()
        );
        assert_ne!(two("a", ""), stable_hash("a").ok().unwrap_or_default());
    }

    #[test]
    fn option_unit_and_zero_are_distinct() {
        let all = [
            h(&Some(0u32)),
            h(&0u32),
            h(&None::<u32>),
            h(&()),
            h(&Some(())),
            h(&Some(None::<u8>)),
            h(&false),
            h(&0.0f64),
            h(""),
            h(&Vec::<u8>::new()),
            h(&Bytes(b"")),
            h(&BTreeMap::<u8, u8>::new()),
        ];
        let unique: BTreeSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }

    // ---- normalisation -----------------------------------------------------

    #[test]
    fn integers_hash_by_value() {
        let five = h(&5u64);
        assert_eq!(h(&5u8), five);
        assert_eq!(h(&5u16), five);
        assert_eq!(h(&5u32), five);
        assert_eq!(h(&5u128), five);
        assert_eq!(h(&5usize), five);
        assert_eq!(h(&5i8), five);
        assert_eq!(h(&5i16), five);
        assert_eq!(h(&5i32), five);
        assert_eq!(h(&5i64), five);
        assert_eq!(h(&5i128), five);
        assert_eq!(h(&5isize), five);

        let minus = h(&-5i64);
        assert_eq!(h(&-5i8), minus);
        assert_eq!(h(&-5i16), minus);
        assert_eq!(h(&-5i32), minus);
        assert_eq!(h(&-5i128), minus);
        assert_ne!(minus, five);

        // u128::MAX and -1 share the low 16 bytes but not the sign byte.
        assert_ne!(h(&u128::MAX), h(&-1i128));
        assert_ne!(h(&(1u128 << 127)), h(&i128::MIN));
        assert_eq!(h(&(i64::MAX as u64)), h(&i64::MAX));
        assert_eq!(h(&u64::MAX), h(&u128::from(u64::MAX)));
        assert_ne!(h(&1u8), h(&2u8));
        assert_ne!(h(&1u8), h(&1.0f64));
    }

    #[test]
    fn float_rules() {
        assert_eq!(h(&-0.0f64), h(&0.0f64));
        assert_eq!(h(&-0.0f32), h(&0.0f64));
        let nan = h(&f64::NAN);
        assert_eq!(h(&-f64::NAN), nan);
        assert_eq!(h(&f64::from_bits(0x7ff0_0000_0000_0001)), nan);
        assert_eq!(h(&f64::from_bits(0xfff8_dead_beef_0001)), nan);
        assert_eq!(h(&f32::NAN), nan);
        assert_eq!(h(&f32::from_bits(0xffc0_1234)), nan);
        assert_eq!(h(&1.5f32), h(&1.5f64));
        assert_ne!(h(&0.1f32), h(&0.1f64));
        assert_ne!(h(&f64::INFINITY), h(&f64::NEG_INFINITY));
        assert_ne!(h(&f64::INFINITY), nan);
        assert_eq!(h(&f32::INFINITY), h(&f64::INFINITY));
        assert_ne!(h(&1.0f64), h(&1.0000000000000002f64));
        assert_eq!(stable_hash(&f64::NAN).ok(), stable_hash(&f64::NAN).ok());
    }

    #[test]
    fn strings_chars_bytes_and_sequences() {
        assert_eq!(h("abc"), h(&String::from("abc")));
        assert_eq!(h(&std::borrow::Cow::Borrowed("abc")), h("abc"));
        assert_eq!(h(&'a'), h("a"));
        assert_eq!(h(&'é'), h("é"));
        assert_ne!(h(&'a'), h(&97u32));
        // Bytes vs sequence of u8 vs string are distinct.
        assert_ne!(h(&Bytes(b"ab")), h(&vec![b'a', b'b']));
        assert_ne!(h(&Bytes(b"ab")), h("ab"));
        // Vec, slice, array and tuple share the sequence encoding.
        let v = h(&vec![1u32, 2, 3]);
        assert_eq!(h(&[1u32, 2, 3]), v);
        assert_eq!(h(&[1u32, 2, 3][..]), v);
        assert_eq!(h(&(1u8, 2u16, 3i64)), v);
        assert_eq!(h(&Point(1, 2)), h(&(1, 2)));
        assert_ne!(h(&vec![1u32, 2, 3]), h(&vec![3u32, 2, 1]));
        // BTreeSet is canonical.
        let s1: BTreeSet<u32> = [3, 1, 2].into_iter().collect();
        let s2: BTreeSet<u32> = [2, 3, 1].into_iter().collect();
        assert_eq!(h(&s1), h(&s2));
    }

    #[test]
    fn newtypes_and_unit_structs() {
        assert_eq!(h(&UserId(5)), h(&5u64));
        assert_eq!(h(&Marker), h(&()));
        assert_ne!(h(&Marker), h(&None::<()>));
    }

    // ---- structs and enums ---------------------------------------------------

    #[test]
    fn struct_field_order_and_type_name_do_not_matter() {
        assert_eq!(h(&user()), h(&user_reordered()));
        // A struct equals a map with the same string keys.
        let mut map: HashMap<&str, serde_json::Value> = HashMap::new();
        map.insert("id", serde_json::json!(42));
        map.insert("name", serde_json::json!("alice"));
        map.insert("active", serde_json::json!(true));
        map.insert("score", serde_json::json!(1.5));
        map.insert("tags", serde_json::json!(["admin", "beta"]));
        assert_eq!(h(&map), h(&user()));
        // Field values still matter.
        let mut other = user();
        other.id = 43;
        assert_ne!(h(&other), h(&user()));
        // Field names matter.
        #[derive(Serialize)]
        struct A {
            x: u8,
        }
        #[derive(Serialize)]
        struct B {
            y: u8,
        }
        assert_ne!(h(&A { x: 1 }), h(&B { y: 1 }));
    }

    #[test]
    fn enums_encode_variant_names() {
        assert_eq!(h(&Shape::Empty), h(&ShapeReordered::Empty));
        assert_eq!(h(&Shape::Circle(2.5)), h(&ShapeReordered::Circle(2.5)));
        assert_eq!(
            h(&Shape::Rect { w: 1, h: 2 }),
            h(&ShapeReordered::Rect { h: 2, w: 1 })
        );
        assert_eq!(h(&Shape::Pair(1, -2)), h(&ShapeReordered::Pair(1, -2)));
        let all = [
            h(&Shape::Empty),
            h(&Shape::Circle(0.0)),
            h(&Shape::Rect { w: 0, h: 0 }),
            h(&Shape::Pair(0, 0)),
            h(&()),
            h("Empty"),
        ];
        let unique: BTreeSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        // Struct variant payload is field-order independent and differs from a
        // tuple variant with the same values.
        #[derive(Serialize)]
        enum E {
            Rect(u32, u32),
        }
        assert_ne!(h(&E::Rect(1, 2)), h(&Shape::Rect { w: 1, h: 2 }));
    }

    // ---- errors ----------------------------------------------------------------

    struct Failing;

    impl Serialize for Failing {
        fn serialize<S: ser::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
            Err(ser::Error::custom("boom: not hashable"))
        }
    }

    #[derive(Serialize)]
    struct HasFailing {
        a: u32,
        bad: Vec<BTreeMap<String, Failing>>,
    }

    #[test]
    fn serialize_error_is_returned() {
        let err = stable_hash(&Failing).err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.message() == "boom: not hashable")
        );
        assert!(err.is_some_and(|e| e.to_string().contains("boom: not hashable")));

        let nested = HasFailing {
            a: 1,
            bad: vec![[("k".to_owned(), Failing)].into_iter().collect()],
        };
        assert!(stable_hash(&nested).is_err());
        assert!(stable_hash_hex(&vec![Some(Failing)]).is_err());

        // The hasher is unchanged by a failed argument, and the thread's scratch
        // buffer is clean afterwards.
        let mut hasher = ArgsHasher::new();
        assert!(hasher.arg(&1u8).is_ok());
        let before = hasher.finish();
        assert!(hasher.arg(&nested).is_err());
        assert_eq!(hasher.finish(), before);
        assert!(hasher.arg(&query_with(filters())).is_ok());
        let mut fresh = ArgsHasher::new();
        assert!(
            fresh
                .arg(&1u8)
                .and_then(|h| h.arg(&query_with(filters())))
                .is_ok()
        );
        assert_eq!(hasher.finish(), fresh.finish());
    }

    /// A `Serialize` impl that misuses `SerializeMap` gets an error, not a panic.
    #[test]
    fn map_misuse_is_an_error() {
        use ser::SerializeMap;
        struct ValueWithoutKey;
        impl Serialize for ValueWithoutKey {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                m.serialize_value(&1u8)?;
                m.end()
            }
        }
        struct KeyTwice;
        impl Serialize for KeyTwice {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                m.serialize_key(&1u8)?;
                m.serialize_key(&2u8)?;
                m.end()
            }
        }
        struct DanglingKey;
        impl Serialize for DanglingKey {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_key(&1u8)?;
                m.end()
            }
        }
        assert!(stable_hash(&ValueWithoutKey).is_err());
        assert!(stable_hash(&KeyTwice).is_err());
        assert!(stable_hash(&DanglingKey).is_err());
        assert!(stable_hash(&vec![(); 3]).is_ok());
    }

    /// A `Serialize` impl that swallows an inner error still yields a
    /// deterministic result and leaves no garbage behind.
    #[test]
    fn swallowed_errors_do_not_corrupt_later_hashes() {
        use ser::SerializeSeq;
        struct Swallow;
        impl Serialize for Swallow {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(None)?;
                let _ = seq.serialize_element(&HasFailing {
                    a: 1,
                    bad: vec![[("k".to_owned(), Failing)].into_iter().collect()],
                });
                seq.serialize_element(&filters())?;
                seq.end()
            }
        }
        let first = stable_hash(&Swallow).ok();
        assert!(first.is_some());
        assert_eq!(stable_hash(&Swallow).ok(), first);
        assert_eq!(
            h(&query_with(filters())),
            "469182e86d66a93becfd43c7ae25808d"
        );
    }

    // ---- misc --------------------------------------------------------------

    #[test]
    fn hex_format_and_default() {
        let mut hasher = ArgsHasher::default();
        assert!(hasher.arg(&123u32).is_ok());
        let hex = hasher.finish_hex();
        assert_eq!(hex.len(), 32);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(u128::from_str_radix(&hex, 16).ok(), Some(hasher.finish()));
        assert_eq!(Some(hex.clone()), stable_hash_hex(&123u32).ok());
        // finish does not consume or reset.
        assert_eq!(hasher.finish_hex(), hex);
        assert_eq!(ArgsHasher::new().finish(), ArgsHasher::default().finish());
        assert!(format!("{hasher:?}").contains(&hex));
    }

    #[test]
    fn serializer_is_not_human_readable() {
        struct Probe;
        impl Serialize for Probe {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let readable = s.is_human_readable();
                s.serialize_bool(readable)
            }
        }
        assert_eq!(h(&Probe), h(&false));
    }

    /// A `Serialize` impl that itself hashes (re-entrant use of the scratch
    /// buffer) works and gives the same result.
    #[test]
    fn reentrant_hashing() {
        struct Reentrant;
        impl Serialize for Reentrant {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let inner = stable_hash_hex(&query_with(filters())).map_err(ser::Error::custom)?;
                let mut m: BTreeMap<String, String> = BTreeMap::new();
                m.insert("inner".to_owned(), inner);
                m.serialize(s)
            }
        }
        let direct: BTreeMap<String, String> = [("inner".to_owned(), h(&query_with(filters())))]
            .into_iter()
            .collect();
        assert_eq!(h(&vec![Reentrant]), h(&vec![direct]));
    }

    #[test]
    fn same_hash_on_other_threads() {
        let expected = h(&query_with(filters()));
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| stable_hash_hex(&query_with(filters())).ok()))
            .collect();
        for handle in handles {
            assert_eq!(
                handle.join().ok().flatten().as_deref(),
                Some(expected.as_str())
            );
        }
    }
}
