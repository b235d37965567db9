//! Times `make_thumbnails` (small 150, medium 300, large 800, JPEG q85) on real files: per image
//! on one thread, then the throughput of a pool of threads sharing the work, as a service's
//! blocking pool would run it.
//!
//! Usage: `thumbs FILE... [--repeat N] [--threads T] [--webp] [--out DIR]`; `--repeat 0` makes
//! one run per file and prints nothing (for timing the whole process with hyperfine).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use pm_media::{make_thumbnails, Limits, OutputFormat, ThumbSpec};

fn main() {
    let mut files = Vec::new();
    let (mut repeat, mut threads, mut out_dir) = (20usize, 0usize, None::<String>);
    let mut spec = ThumbSpec::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeat" => repeat = args.next().and_then(|s| s.parse().ok()).expect("--repeat N"),
            "--threads" => threads = args.next().and_then(|s| s.parse().ok()).expect("--threads T"),
            "--webp" => spec.format = OutputFormat::WebP,
            "--out" => out_dir = args.next(),
            _ => files.push(a),
        }
    }
    let limits = Limits::default();
    let inputs: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read(f).expect("reading an input file")))
        .collect();

    for (name, bytes) in &inputs {
        // One warm-up run (page faults, allocator), which also writes the outputs if asked.
        let thumbs = make_thumbnails(bytes, &spec, &limits).expect("thumbnails");
        if let Some(dir) = &out_dir {
            for t in &thumbs {
                let stem = std::path::Path::new(name)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                let ext = if spec.format == OutputFormat::WebP {
                    "webp"
                } else {
                    "jpg"
                };
                std::fs::write(format!("{dir}/{stem}_{}.{ext}", t.name), &t.bytes).expect("writing");
            }
        }
        if repeat == 0 {
            continue; // one run only: used to time the whole process from outside
        }
        let mut times: Vec<f64> = (0..repeat)
            .map(|_| {
                let t = Instant::now();
                let thumbs = make_thumbnails(bytes, &spec, &limits).expect("thumbnails");
                std::hint::black_box(thumbs);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        println!(
            "{name}: median {:.1} ms, mean {mean:.1} ms, min {:.1} ms over {repeat} runs ({})",
            times[times.len() / 2],
            times[0],
            thumbs
                .iter()
                .map(|t| format!("{} {}x{}", t.name, t.width, t.height))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    if threads > 0 {
        let total = repeat.max(1) * inputs.len();
        let next = AtomicUsize::new(0);
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let bytes = &inputs[i % inputs.len()].1;
                    std::hint::black_box(make_thumbnails(bytes, &spec, &limits).expect("thumbnails"));
                });
            }
        });
        let secs = start.elapsed().as_secs_f64();
        println!(
            "pool: {threads} threads, {total} images in {secs:.2} s: {:.1} images/s",
            total as f64 / secs
        );
    }
}
