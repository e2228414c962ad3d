//! Synthetic district generator (being written).
