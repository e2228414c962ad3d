//! dataflows
