//! Shared-memory wavefronts and global sectors per warp request, counted by
//! the emulator (`Emulator::with_trace`): on a kernel with known counts, and
//! over the whole kernel suite against the committed baseline
//! benches/emu_traffic_baseline.tsv (a kernel whose wavefronts or sectors
//! per request grow fails until the baseline is updated in the same change:
//! `DAE_EMU_TRAFFIC_BLESS=1 cargo test -p dae-emu --test trace`).

use dae_core::check::{kernel_cases, Selection};
use dae_core::ops::{Arg, Launch};
use dae_core::Buffer;
use dae_emu::{suite_seed, Emulator, TraceRow};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The counters are the process's: one traced test at a time.
static TRACING: Mutex<()> = Mutex::new(());

#[test]
fn known_patterns_count_as_modelled() {
    let _one = TRACING.lock().unwrap_or_else(|e| e.into_inner());
    let emu = Emulator::new(132).with_trace();
    let input = Buffer::<_, f32>::from_host(&emu, &vec![1.0; 32 * 32]).unwrap();
    let out = Buffer::<_, f32>::zeros(&emu, 32).unwrap();
    let l = Launch {
        kernel: "emu_test_traffic",
        grid: (1, 1, 1),
        block: (32, 1, 1),
        args: vec![Arg::Ptr(input.ptr()), Arg::Ptr(out.ptr())],
    };
    emu.launch(&l).unwrap();
    let rows: Vec<TraceRow> = emu
        .take_trace()
        .into_iter()
        .filter(|r| r.kernel == "emu_test_traffic")
        .collect();
    for r in &rows {
        println!("{r:?}");
        assert_eq!(r.requests, 1, "{r:?}");
    }
    let count = |shared: bool, store: bool, width: u32| -> Vec<(u64, u64, u64)> {
        let mut v: Vec<_> = rows
            .iter()
            .filter(|r| r.shared == shared && r.store == store && r.width == width)
            .map(|r| (r.wavefronts, r.sectors, r.lines))
            .collect();
        v.sort();
        v
    };
    assert_eq!(count(false, false, 4), vec![(0, 4, 1), (0, 32, 32)]);
    assert_eq!(count(true, true, 4), vec![(1, 0, 0), (2, 0, 0)]);
    assert_eq!(count(true, false, 16), vec![(4, 0, 0)], "{rows:#?}");
    assert_eq!(count(false, true, 4), vec![(0, 4, 1)]);
    assert_eq!(out.download(&emu, 1).unwrap(), vec![4.0]);
}

/// Per kernel: shared wavefronts per shared request, global sectors and
/// lines per global request.
fn per_kernel(rows: &[TraceRow]) -> BTreeMap<String, [f64; 3]> {
    let mut sums: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    for r in rows {
        let s = sums.entry(r.kernel.clone()).or_default();
        if r.shared {
            s[0] += r.requests;
            s[1] += r.wavefronts;
        } else {
            s[2] += r.requests;
            s[3] += r.sectors;
            s[4] += r.lines;
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    sums.into_iter()
        .map(|(k, s)| {
            let v = [ratio(s[1], s[0]), ratio(s[3], s[2]), ratio(s[4], s[2])];
            (k, v)
        })
        .collect()
}

const BASELINE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../benches/emu_traffic_baseline.tsv"
);
const HEADER: &str =
    "kernel\tshared wavefronts/request\tglobal sectors/request\tglobal lines/request";

#[test]
fn traffic_per_kernel_matches_the_baseline() {
    let _one = TRACING.lock().unwrap_or_else(|e| e.into_inner());
    let emu = Emulator::new(132).with_trace();
    let seed = suite_seed();
    kernel_cases(&emu, seed, &Selection::default(), false).expect("suite runs");
    let rows: Vec<TraceRow> = emu
        .take_trace()
        .into_iter()
        .filter(|r| !r.kernel.starts_with("emu_test_"))
        .collect();
    println!(
        "{:<22} {:>4} {:>2} {:>9} {:>7} {:>8} {:>8}  site",
        "kernel", "kind", "B", "requests", "wf/req", "sect/req", "line/req"
    );
    for r in &rows {
        let per = |x: u64| x as f64 / r.requests.max(1) as f64;
        let kind = format!(
            "{}{}",
            if r.shared { "sh" } else { "gl" },
            if r.store { "st" } else { "ld" }
        );
        println!(
            "{:<22} {kind:>4} {:>2} {:>9} {:>7.2} {:>8.2} {:>8.2}  {}",
            r.kernel,
            r.width,
            r.requests,
            per(r.wavefronts),
            per(r.sectors),
            per(r.lines),
            r.site
        );
    }
    let now = per_kernel(&rows);
    let text: String = std::iter::once(HEADER.to_string())
        .chain(
            now.iter()
                .map(|(k, v)| format!("{k}\t{:.3}\t{:.3}\t{:.3}", v[0], v[1], v[2])),
        )
        .map(|l| l + "\n")
        .collect();
    if std::env::var("DAE_EMU_TRAFFIC_BLESS").is_ok() {
        std::fs::write(BASELINE, &text).unwrap();
        return;
    }
    print!("{text}");
    let baseline = std::fs::read_to_string(BASELINE).expect("benches/emu_traffic_baseline.tsv");
    let mut worse = Vec::new();
    let mut seen = 0;
    for line in baseline.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let Some(v) = now.get(f[0]) else {
            worse.push(format!("{}: in the baseline, not traced", f[0]));
            continue;
        };
        seen += 1;
        for (i, name) in [
            "shared wavefronts/request",
            "global sectors/request",
            "global lines/request",
        ]
        .iter()
        .enumerate()
        {
            let base: f64 = f[i + 1].parse().unwrap();
            if v[i] > base + 1e-3 {
                worse.push(format!("{}: {name} {:.3}, baseline {base:.3}", f[0], v[i]));
            }
        }
    }
    if seen != now.len() {
        worse.push(format!(
            "{} kernels traced, {seen} in the baseline",
            now.len()
        ));
    }
    assert!(worse.is_empty(), "worse than benches/emu_traffic_baseline.tsv (update it in the same change if intended): {worse:#?}");
}
