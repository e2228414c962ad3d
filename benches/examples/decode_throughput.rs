//! Decode-only throughput of a file of events: `cargo run --release -p benches --example
//! decode_throughput -- FILE [THREADS]`. Prints lines per second.

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: decode_throughput FILE [THREADS]");
    let threads: usize = args.next().map_or(2, |t| t.parse().expect("threads"));
    let start = std::time::Instant::now();
    let file = std::fs::File::open(&path).expect("open");
    let mut lines = 0u64;
    for block in ingest::read_ndjson(file, threads) {
        lines += block.expect("read").len() as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{lines} lines in {seconds:.2} s: {:.0} lines/s with {threads} decode threads", lines as f64 / seconds);
}
