mod generate;
fn main() {}
