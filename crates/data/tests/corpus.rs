//! Inputs that found bugs (issue 10), kept as regression tests: each once
//! panicked or over-allocated in a loader and must now be a clean error
//! naming the file. Add a fuzz target's saved input (`DAE_FUZZ_SAVE`) here
//! with a name saying what it broke.

use std::path::Path;

#[test]
fn every_corpus_input_is_a_clean_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let result = std::panic::catch_unwind(|| dae_data::load(&path, None));
        match result {
            Err(_) => panic!("{name}: the loader panicked"),
            Ok(Ok(_)) => panic!("{name}: loaded, but it is malformed"),
            Ok(Err(e)) => {
                let e = format!("{e:#}");
                assert!(e.contains(&name), "{name}: the error does not name it: {e}");
                eprintln!("{name}: {e}");
            }
        }
        seen += 1;
    }
    assert!(seen >= 2, "the corpus at {} is missing", dir.display());
}
