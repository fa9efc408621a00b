//! Config files: any text either applies or fails with an error that names one of its lines.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openpush::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut config = Config::default();
    match config.apply_text(text) {
        Ok(()) => drop(config.validate()),
        Err(e) => {
            let line = e.0.strip_prefix("line ").and_then(|r| r.split(':').next());
            let line: usize = line
                .and_then(|n| n.parse().ok())
                .expect("the error names a line");
            assert!((1..=text.lines().count()).contains(&line), "{e}");
        }
    }
});
