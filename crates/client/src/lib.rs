//! berth-client (stub; being written)
