//! berth-runtime-lib (stub; being written)
