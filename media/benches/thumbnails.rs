//! Criterion bench: the three default thumbnails (150, 300, 800 px, JPEG q85) of synthetic
//! photo-like JPEGs at quality 90 (a 2000x2000 product photo and a 4000x3000 12 MP photo),
//! generated in memory so that nothing is committed. `loadtests/thumbnail_bench.sh` compares the
//! same pipeline with vipsthumbnail on the same files.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pm_media::{make_thumbnails, synth, Limits, OutputFormat, ThumbSpec};

fn thumbnails(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("thumbnails");
    group.sample_size(30);
    group.throughput(Throughput::Elements(1));
    for (name, w, h) in [("2000x2000", 2000, 2000), ("4000x3000", 4000, 3000)] {
        let photo = synth::photo_jpeg(w, h, 90, 1);
        for (label, format) in [("jpeg", OutputFormat::Jpeg), ("webp", OutputFormat::WebP)] {
            let spec = ThumbSpec {
                format,
                ..ThumbSpec::default()
            };
            group.bench_function(format!("{name}/three_sizes_{label}"), |b| {
                b.iter(|| make_thumbnails(std::hint::black_box(&photo), &spec, &limits).unwrap())
            });
        }
        let info = pm_media::probe(&photo, &limits).unwrap();
        group.bench_function(format!("{name}/probe"), |b| {
            b.iter(|| pm_media::probe(std::hint::black_box(&photo), &limits).unwrap())
        });
        println!("{name}: {} bytes, {}", photo.len(), info.color_type);
    }
    group.finish();
}

criterion_group!(benches, thumbnails);
criterion_main!(benches);
