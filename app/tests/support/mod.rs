pub mod broker;
pub mod engine;
pub mod oracle;
