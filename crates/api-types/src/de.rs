//! Small serde helpers shared by the models.

use serde::{Deserialize, Deserializer};

/// `deserialize_with` helper: JSON `null` becomes `T::default()` (Go's encoding/json leaves a
/// non-pointer field at its zero value on null; some clients send explicit nulls).
pub fn nd<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `skip_serializing_if` helper mirroring Go's `omitempty` on strings.
pub fn is_empty_str(s: &str) -> bool {
    s.is_empty()
}

/// `skip_serializing_if` helper mirroring Go's `omitempty` on booleans.
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// `skip_serializing_if` helper mirroring Go's `omitempty` on integers.
pub fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// `skip_serializing_if` helper mirroring Go's `omitempty` on nil-or-empty slices.
pub fn is_none_or_empty_vec<T>(v: &Option<Vec<T>>) -> bool {
    !matches!(v, Some(v) if !v.is_empty())
}

/// `skip_serializing_if` helper mirroring Go's `omitempty` on nil-or-empty maps.
pub fn is_none_or_empty_map<K, V>(v: &Option<std::collections::BTreeMap<K, V>>) -> bool {
    !matches!(v, Some(v) if !v.is_empty())
}
