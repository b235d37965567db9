#!/usr/bin/env bash
# The thumbnail benchmark of the media issue: the three sizes (150, 300, 800 px, JPEG q85) of a
# 2000x2000 product photo and of a 4000x3000 (12 MP) photo, both synthetic photo-like JPEGs at
# quality 90 (media/examples/gen_photo.rs), made by pm-media next to vipsthumbnail (libvips) on
# the same files; then the throughput of pm-media with two threads (both cores).
#
#   bash loadtests/thumbnail_bench.sh
#
# Knobs: PM_BENCH_RUNS (hyperfine runs, default 20), PM_BENCH_REPEAT (in-process repeats per
# image, default 30), PM_BENCH_POOL (images per thread count in the pool run, default 40).
#
# How vipsthumbnail is timed: it makes one size per invocation, so the reference is three
# invocations from the same file (`vipsthumbnail in.jpg -s 800 -o out_800.jpg[Q=85]`, then 300,
# then 150), each with libvips' own shrink-on-load, under hyperfine. That includes three process
# start-ups, so the script also times the same three invocations on a 16x16 JPEG and reports the
# difference ("vips net") as the work itself; the target (pm-media <= 0.4x vips) is checked
# against both. pm-media is timed in-process (median of PM_BENCH_REPEAT runs, one thread: what
# the service's blocking pool does per image) and as a whole process under hyperfine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs="${PM_BENCH_RUNS:-20}"
repeat="${PM_BENCH_REPEAT:-30}"
pool="${PM_BENCH_POOL:-40}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
need_apt=()
command -v vipsthumbnail >/dev/null || need_apt+=(libvips-tools)
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
pkg-config --exists libturbojpeg 2>/dev/null || need_apt+=(libturbojpeg0-dev pkg-config)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== building pm-media's examples (release)"
cargo build --release -q -p pm-media --example gen_photo --example thumbs
bin="$CARGO_TARGET_DIR/release/examples"

echo "== generating the photos"
"$bin/gen_photo" "$work/p2000.jpg" 2000 2000 90 1
"$bin/gen_photo" "$work/p12mp.jpg" 4000 3000 90 1
"$bin/gen_photo" "$work/tiny.jpg" 16 16 90 1 >/dev/null

vips3() { # the three vipsthumbnail invocations for one file, as one shell command
    local f="$1" o="$work/out_$(basename "$1" .jpg)"
    echo "vipsthumbnail $f -s 800 -o ${o}_800.jpg[Q=85] && vipsthumbnail $f -s 300 -o ${o}_300.jpg[Q=85] && vipsthumbnail $f -s 150 -o ${o}_150.jpg[Q=85]"
}
mean_ms() { # hyperfine's mean of one command, in ms
    local json="$work/h.json"
    hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$json" "$1" >/dev/null
    python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["mean"] * 1e3))' "$json"
}

vips --version
echo "== timing (hyperfine, $runs runs each; pm-media in-process: median of $repeat)"
startup="$(mean_ms "sh -c '$(vips3 "$work/tiny.jpg")'")"
rows=()
for img in p2000 p12mp; do
    f="$work/$img.jpg"
    vips_gross="$(mean_ms "sh -c '$(vips3 "$f")'")"
    ours_process="$(mean_ms "$bin/thumbs $f --repeat 0")"
    ours_inproc="$("$bin/thumbs" "$f" --repeat "$repeat" | sed -E 's/.*median ([0-9.]+) ms.*/\1/')"
    rows+=("$img $vips_gross $startup $ours_inproc $ours_process")
done

echo "== pool: 2 threads over $pool images per file"
pool_line="$("$bin/thumbs" "$work/p2000.jpg" "$work/p12mp.jpg" --repeat "$((pool / 2))" --threads 2 | tail -1)"
pool_2000="$("$bin/thumbs" "$work/p2000.jpg" --repeat "$pool" --threads 2 | tail -1)"
pool_12mp="$("$bin/thumbs" "$work/p12mp.jpg" --repeat "$pool" --threads 2 | tail -1)"

python3 - "$pool_line" "$pool_2000" "$pool_12mp" "${rows[@]}" <<'PY'
import sys
pool_mixed, pool_2000, pool_12mp, *rows = sys.argv[1:]
names = {"p2000": "2000x2000", "p12mp": "4000x3000 (12 MP)"}
print()
print("| image | vipsthumbnail x3 (3 processes) | vips start-up x3 | vips net | pm-media in-process | pm-media process | ratio in-process / vips net | ratio process / vips x3 | target <= 0.4x |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    img, gross, start, inproc, proc_ = r.split()
    gross, start, inproc, proc_ = map(float, (gross, start, inproc, proc_))
    net = max(gross - start, 0.1)
    r_net, r_gross = inproc / net, proc_ / gross
    ok = "met" if r_net <= 0.4 and r_gross <= 0.4 else "NOT met"
    print(f"| {names[img]} | {gross:.1f} ms | {start:.1f} ms | {net:.1f} ms | {inproc:.1f} ms | {proc_:.1f} ms | {r_net:.2f}x | {r_gross:.2f}x | {ok} |")
print()
print("pool, 2000x2000 only:", pool_2000.split("pool: ")[-1])
print("pool, 4000x3000 only:", pool_12mp.split("pool: ")[-1])
print("pool, both files alternating:", pool_mixed.split("pool: ")[-1])
PY
