//! Docker's `strslice.StrSlice`: a JSON array of strings, or a single string (treated as a
//! one-element list), or null. Used for `Cmd`, `Entrypoint`, `Shell`, `CapAdd`, `CapDrop`.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `deserialize_with` helper for `Option<Vec<String>>` fields with StrSlice semantics:
/// `null` -> `None`, `"a b"` -> `Some(["a b"])`, `[..]` -> `Some([..])` (an empty array stays
/// `Some([])`, which is distinct from null for `Entrypoint`).
pub fn deserialize<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}
