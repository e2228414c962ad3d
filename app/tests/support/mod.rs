pub mod engine;
pub mod oracle;
