//! Whether a value's JSON reads back as the value: what a fill checks before storing.
//!
//! JSON has one `null` for several values of serde's data model: `None`, `()`, a unit struct,
//! and (as `serde_json` writes them) `NaN` and the infinities. So `Some(f64::NAN)` and, in an
//! `Option<Option<T>>`, `Some(None)` are written as `null` and read back as `None`: a hit
//! would return another value than the computation did. Such a value is not stored.
//!
//! The check decodes the JSON back into the value's type and compares the two values by their
//! [`Shape`]: what they hand to a serde serializer, with `Some` kept apart from `None`, floats
//! by their bits, and map entries sorted (a `HashMap` serializes in no fixed order).
//!
//! It runs only when the JSON contains `null`: every collapse of the data model above ends in
//! a `null`, so a JSON text without one reads back as written. (Floats read back exactly too:
//! the runtime enables `serde_json`'s `float_roundtrip`.) The cost is then a substring search
//! of the encoded value, a few GB/s. What this does not catch: a type whose own
//! `Serialize`/`Deserialize` do not round-trip without a `null` (e.g. an untagged enum whose
//! variants overlap). A `HashSet` (serialized as a sequence, in no fixed order) holding a
//! `null` may be refused although it would read back equal: not stored, never wrong.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::ser;
use serde_json::value::RawValue;

/// Whether `raw`, the JSON of `value`, reads back as a value equal to it.
pub(crate) fn reads_back<T: Serialize + DeserializeOwned>(value: &T, raw: &RawValue) -> bool {
    if !raw.get().contains("null") {
        return true;
    }
    let Ok(back) = serde_json::from_str::<T>(raw.get()) else {
        return false;
    };
    match (shape(value), shape(&back)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What a value hands to a serializer, as a tree that can be compared.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shape {
    Unit,
    None,
    Some(Box<Shape>),
    Bool(bool),
    Int(i128),
    UInt(u128),
    /// The bits of the value as an `f64` (an `f32` widened).
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    Seq(Vec<Shape>),
    /// Entries sorted.
    Map(Vec<(Shape, Shape)>),
    Struct(Vec<(&'static str, Shape)>),
    Variant(u32, Box<Shape>),
}

pub(crate) fn shape<T: Serialize + ?Sized>(value: &T) -> Result<Shape, ShapeError> {
    value.serialize(Shaper)
}

#[derive(Debug)]
pub(crate) struct ShapeError(String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

impl ser::Error for ShapeError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        ShapeError(msg.to_string())
    }
}

struct Shaper;

type R = Result<Shape, ShapeError>;

impl ser::Serializer for Shaper {
    type Ok = Shape;
    type Error = ShapeError;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Seq;
    type SerializeMap = Map;
    type SerializeStruct = Struct;
    type SerializeStructVariant = Struct;

    fn serialize_bool(self, v: bool) -> R {
        Ok(Shape::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> R {
        Ok(Shape::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> R {
        Ok(Shape::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> R {
        Ok(Shape::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> R {
        Ok(Shape::Int(v.into()))
    }
    fn serialize_i128(self, v: i128) -> R {
        Ok(Shape::Int(v))
    }
    fn serialize_u8(self, v: u8) -> R {
        Ok(Shape::UInt(v.into()))
    }
    fn serialize_u16(self, v: u16) -> R {
        Ok(Shape::UInt(v.into()))
    }
    fn serialize_u32(self, v: u32) -> R {
        Ok(Shape::UInt(v.into()))
    }
    fn serialize_u64(self, v: u64) -> R {
        Ok(Shape::UInt(v.into()))
    }
    fn serialize_u128(self, v: u128) -> R {
        Ok(Shape::UInt(v))
    }
    fn serialize_f32(self, v: f32) -> R {
        Ok(Shape::Float(f64::from(v).to_bits()))
    }
    fn serialize_f64(self, v: f64) -> R {
        Ok(Shape::Float(v.to_bits()))
    }
    fn serialize_char(self, v: char) -> R {
        Ok(Shape::Str(v.into()))
    }
    fn serialize_str(self, v: &str) -> R {
        Ok(Shape::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> R {
        Ok(Shape::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> R {
        Ok(Shape::None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> R {
        Ok(Shape::Some(Box::new(shape(value)?)))
    }
    fn serialize_unit(self) -> R {
        Ok(Shape::Unit)
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        Ok(Shape::Unit)
    }
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> R {
        Ok(Shape::Variant(index, Box::new(Shape::Unit)))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> R {
        shape(value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> R {
        Ok(Shape::Variant(index, Box::new(shape(value)?)))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, ShapeError> {
        Ok(Seq::new(None, len.unwrap_or(0)))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, ShapeError> {
        Ok(Seq::new(None, len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq, ShapeError> {
        Ok(Seq::new(None, len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Seq, ShapeError> {
        Ok(Seq::new(Some(index), len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map, ShapeError> {
        Ok(Map {
            entries: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Struct, ShapeError> {
        Ok(Struct::new(None, len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Struct, ShapeError> {
        Ok(Struct::new(Some(index), len))
    }
}

fn in_variant(variant: Option<u32>, inner: Shape) -> Shape {
    match variant {
        Some(i) => Shape::Variant(i, Box::new(inner)),
        None => inner,
    }
}

struct Seq {
    variant: Option<u32>,
    items: Vec<Shape>,
}

impl Seq {
    fn new(variant: Option<u32>, len: usize) -> Seq {
        Seq {
            variant,
            items: Vec::with_capacity(len),
        }
    }
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ShapeError> {
        self.items.push(shape(value)?);
        Ok(())
    }
    fn finish(self) -> R {
        Ok(in_variant(self.variant, Shape::Seq(self.items)))
    }
}

/// The four sequence-like serializers differ only in the name of the method that takes an
/// element.
macro_rules! seq_serializer {
    ($($trait:ident::$method:ident),*) => {$(
        impl ser::$trait for Seq {
            type Ok = Shape;
            type Error = ShapeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ShapeError> {
                self.push(value)
            }
            fn end(self) -> R {
                self.finish()
            }
        }
    )*};
}

seq_serializer!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

struct Map {
    entries: Vec<(Shape, Shape)>,
    key: Option<Shape>,
}

impl ser::SerializeMap for Map {
    type Ok = Shape;
    type Error = ShapeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ShapeError> {
        self.key = Some(shape(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ShapeError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ShapeError("a map value without a key".to_owned()))?;
        self.entries.push((key, shape(value)?));
        Ok(())
    }
    fn end(mut self) -> R {
        self.entries.sort();
        Ok(Shape::Map(self.entries))
    }
}

struct Struct {
    variant: Option<u32>,
    fields: Vec<(&'static str, Shape)>,
}

impl Struct {
    fn new(variant: Option<u32>, len: usize) -> Struct {
        Struct {
            variant,
            fields: Vec::with_capacity(len),
        }
    }
}

impl ser::SerializeStruct for Struct {
    type Ok = Shape;
    type Error = ShapeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ShapeError> {
        self.fields.push((key, shape(value)?));
        Ok(())
    }
    fn end(self) -> R {
        Ok(in_variant(self.variant, Shape::Struct(self.fields)))
    }
}

impl ser::SerializeStructVariant for Struct {
    type Ok = Shape;
    type Error = ShapeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ShapeError> {
        self.fields.push((key, shape(value)?));
        Ok(())
    }
    fn end(self) -> R {
        Ok(in_variant(self.variant, Shape::Struct(self.fields)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn check<T: Serialize + DeserializeOwned>(v: &T) -> bool {
        match serde_json::value::to_raw_value(v) {
            Ok(raw) => reads_back(v, &raw),
            Err(_) => false,
        }
    }

    #[test]
    fn null_collapses_are_caught() {
        assert!(!check(&Some(f64::NAN)));
        assert!(!check(&Some(f64::INFINITY)));
        assert!(!check(&f64::NEG_INFINITY));
        assert!(!check(&Some(None::<u8>)));
        assert!(!check(&Some(())));
        assert!(!check(&vec![Some(Some(1)), Some(None)]));
        assert!(check(&None::<Option<u8>>));
        assert!(check(&Some(Some(1u8))));
        assert!(check(&()));
        assert!(check(&vec![None, Some(1.5f64)]));
        assert!(check(&-0.0f64));
    }

    #[test]
    fn map_order_does_not_matter() {
        let m: HashMap<i32, Option<u8>> = (0..64).map(|i| (i, (i % 2 == 0).then_some(1))).collect();
        assert!(check(&m));
    }
}
