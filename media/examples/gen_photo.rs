//! Writes a synthetic photo-like JPEG (see `pm_media::synth`) for the thumbnail benchmark.
//!
//! Usage: `gen_photo OUT.jpg WIDTH HEIGHT [QUALITY=90] [SEED=1]`

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: gen_photo OUT.jpg WIDTH HEIGHT [QUALITY] [SEED]");
        std::process::exit(2);
    }
    let num = |i: usize, default: u64| args.get(i).map_or(default, |s| s.parse().expect("a number"));
    let (w, h) = (num(1, 0) as u32, num(2, 0) as u32);
    let jpeg = pm_media::synth::photo_jpeg(w, h, num(3, 90) as u8, num(4, 1));
    std::fs::write(&args[0], &jpeg).expect("writing the photo");
    println!(
        "{}: {w}x{h}, {} bytes ({:.2} bits/pixel)",
        args[0],
        jpeg.len(),
        jpeg.len() as f64 * 8.0 / (w as f64 * h as f64)
    );
}
