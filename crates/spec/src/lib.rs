//! berth-spec (stub; being written)
