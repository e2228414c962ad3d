pub mod broker;
pub mod cli;
pub mod engine;
pub mod oracle;
pub mod smtp;
