//! berth-engine (stub; being written)
