//! A small seeded fuzzer for the parsers (issue 10), shared by the fuzz
//! tests of dae-data, dae-model and dae-cli: it
//! mutates valid seed files (size fields, random bytes, truncation) with
//! dae's own portable RNG, runs the parser on each under `catch_unwind`, and
//! fails on a panic or on any single allocation above `ALLOC_LIMIT`, printing
//! the seed, the case and the input to reproduce it. Stable Rust, no extra
//! crates; bounded by `DAE_FUZZ_CASES` cases per target (fixed default);
//! `DAE_FUZZ_SAVE=DIR` keeps failing inputs whole.
use dae_core::rng::{Purpose, Rng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Largest single allocation a parser may make on a fuzzed input: the seed
/// files are a few KB, so anything near this trusted a size field.
pub const ALLOC_LIMIT: usize = 256 << 20;

thread_local! {
    /// The largest allocation above the limit seen on this thread.
    static OVER: Cell<usize> = const { Cell::new(0) };
}

/// Records allocations above the limit; refuses (so the process aborts)
/// only beyond 4 GiB, which this machine may not have.
pub struct Capped;

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        if layout.size() > 4 << 30 {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        if layout.size() > 4 << 30 {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        if new_size > 4 << 30 {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    if size > ALLOC_LIMIT {
        let _ = OVER.try_with(|o| o.set(o.get().max(size)));
    }
}

/// The fixed seed, or `DAE_FUZZ_SEED` to explore others.
pub fn seed() -> u64 {
    std::env::var("DAE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201)
}

/// Cases per target: `default`, or `DAE_FUZZ_CASES`.
pub fn cases(default: usize) -> usize {
    std::env::var("DAE_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Sizes that break trusting parsers.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 62,
    i64::MAX as u64,
    u64::MAX,
];

pub struct Mutator {
    pub rng: Rng,
}

impl Mutator {
    pub fn new(target: u64) -> Self {
        Mutator {
            rng: Rng::new(seed(), Purpose::Test, target),
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.below(n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn interesting(&mut self) -> u64 {
        let v = INTERESTING[self.below(INTERESTING.len())];
        if self.chance(4) {
            v.wrapping_add(self.rng.below(3)).wrapping_sub(1)
        } else {
            v
        }
    }

    /// A number for a text field: interesting, small or random.
    pub fn number(&mut self) -> u64 {
        match self.below(3) {
            0 => self.interesting(),
            1 => self.rng.below(100),
            _ => self.rng.next_u64() >> self.below(64),
        }
    }

    /// Overwrites the `width`-byte integer at `at` with an interesting value.
    pub fn set_int(&mut self, bytes: &mut [u8], at: usize, width: usize, big_endian: bool) {
        if at + width > bytes.len() {
            return;
        }
        let v = self.interesting();
        let le = v.to_le_bytes();
        let be = v.to_be_bytes();
        if big_endian {
            bytes[at..at + width].copy_from_slice(&be[8 - width..]);
        } else {
            bytes[at..at + width].copy_from_slice(&le[..width]);
        }
    }

    /// 1 to 4 generic mutations: interesting integers at random offsets,
    /// random or flipped bytes, truncation, insertion, deletion.
    pub fn mutate_bytes(&mut self, bytes: &mut Vec<u8>) {
        for _ in 0..1 + self.below(4) {
            let len = bytes.len();
            match self.below(7) {
                0 | 1 => {
                    let width = [1, 2, 4, 8][self.below(4)];
                    let at = self.below(len);
                    let be = self.chance(2);
                    self.set_int(bytes, at, width, be);
                }
                2 if len > 0 => {
                    let at = self.below(len);
                    bytes[at] ^= 1 << self.below(8);
                }
                3 if len > 0 => {
                    let at = self.below(len);
                    bytes[at] = self.rng.next_u32() as u8;
                }
                4 => bytes.truncate(self.below(len + 1)),
                5 => {
                    let at = self.below(len + 1);
                    let n = 1 + self.below(16);
                    let fill: Vec<u8> = (0..n).map(|_| self.rng.next_u32() as u8).collect();
                    bytes.splice(at..at, fill);
                }
                _ if len > 0 => {
                    let at = self.below(len);
                    let end = (at + 1 + self.below(16)).min(len);
                    bytes.drain(at..end);
                }
                _ => {}
            }
        }
    }
}

/// With `DAE_FUZZ_SAVE=DIR`, a failing input is written there whole, to be
/// kept in a corpus of regression tests.
fn save_failing(name: &str, case: usize, input: &[u8]) {
    if let Ok(dir) = std::env::var("DAE_FUZZ_SAVE") {
        let path = std::path::Path::new(&dir).join(format!("{name}-seed{}-case{case}.bin", seed()));
        let _ = std::fs::write(path, input);
    }
}

/// Runs `parse` on `cases` inputs made by `make` (from the case number and
/// the mutator), failing on any panic or oversize allocation with what
/// reproduces it. Returns how many inputs parsed without error.
pub fn run<T, E>(
    name: &str,
    target: u64,
    cases: usize,
    mut make: impl FnMut(&mut Mutator) -> Vec<u8>,
    mut parse: impl FnMut(&[u8]) -> Result<T, E>,
) -> usize {
    let mut m = Mutator::new(target);
    let mut accepted = 0;
    for case in 0..cases {
        let input = make(&mut m);
        OVER.with(|o| o.set(0));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&input)));
        let over = OVER.with(|o| o.get());
        let shown: String = input.iter().take(512).map(|b| format!("{b:02x}")).collect();
        let again = format!(
            "fuzz target {name}, seed {} (DAE_FUZZ_SEED), case {case}: {} bytes, first 512 hex {shown}",
            seed(),
            input.len()
        );
        if result.is_err() || over > 0 {
            save_failing(name, case, &input);
        }
        match result {
            Err(_) => panic!("{again}: the parser panicked"),
            Ok(_) if over > 0 => panic!("{again}: allocated {over} bytes (limit {ALLOC_LIMIT})"),
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(_)) => {}
        }
    }
    eprintln!(
        "fuzz {name}: {cases} cases, seed {}, {accepted} accepted",
        seed()
    );
    accepted
}
