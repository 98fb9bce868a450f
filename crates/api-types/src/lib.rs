//! berth-api-types (stub; being written)
