//! berth-sys (stub; being written)
