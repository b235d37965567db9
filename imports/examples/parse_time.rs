//! Times the parse of a supplier file alone (no database): `cargo run --release -p pm-imports
//! --example parse_time FILE`.
use pm_domain::Currency;
use pm_imports::rows::{CsvRows, ReadOptions};

fn main() {
    let path = std::env::args().nth(1).expect("a file");
    let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).unwrap());
    let started = std::time::Instant::now();
    let options = ReadOptions {
        currency: Some(Currency::parse("EUR").unwrap()),
        ..Default::default()
    };
    let mut rows = CsvRows::open(file, options).unwrap();
    let (mut ok, mut bad) = (0u64, 0u64);
    while let Some(r) = rows.next_row() {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(_) => bad += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{ok} rows, {bad} rejects in {secs:.2} s ({:.0} rows/s)",
        ok as f64 / secs
    );
}
