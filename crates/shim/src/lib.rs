//! berth-shim (stub; being written)
