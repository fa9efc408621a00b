//! The test suite's own layout: Cargo compiles `tests/*.rs` and `tests/*/main.rs` as test
//! binaries of their own, and Rust compiles a file only if a `mod` names it, so a test file
//! put in the wrong place either builds the harness once more or never runs. This module
//! checks that `tests/it` is the only test binary and that each of its files is a module.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The names of the entries of `dir` for which `keep` gives a name.
fn entries(dir: &Path, keep: impl Fn(&Path) -> Option<String>) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter_map(|path| keep(&path))
        .collect()
}

/// The modules `file` declares with `mod name;`.
fn declared(file: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let name = line
                .strip_prefix("pub ")
                .unwrap_or(line)
                .strip_prefix("mod ")?;
            name.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

/// The modules the files of `dir` would be: `x.rs`, and `x/mod.rs` as `x`.
fn module_files(dir: &Path, root: &str) -> BTreeSet<String> {
    entries(dir, |path| {
        if path.is_dir() && path.join("mod.rs").is_file() {
            return path.file_name().map(|n| n.to_string_lossy().into_owned());
        }
        let name = path.file_name()?.to_str()?;
        (name != root)
            .then(|| name.strip_suffix(".rs"))
            .flatten()
            .map(str::to_owned)
    })
}

#[test]
fn every_file_of_the_test_binary_is_a_declared_module() {
    let it = tests_dir().join("it");
    for (dir, root) in [(it.clone(), "main.rs"), (it.join("support"), "mod.rs")] {
        let files = module_files(&dir, root);
        let modules = declared(&dir.join(root));
        let undeclared: Vec<_> = files.difference(&modules).collect();
        assert!(
            undeclared.is_empty(),
            "{} never compiles {undeclared:?}: add `mod` lines for them to {root}",
            dir.display()
        );
        assert!(files.len() > 3, "{}: {files:?}", dir.display());
    }
}

#[test]
fn tests_it_is_the_only_test_binary() {
    let others = entries(&tests_dir(), |path| {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let binary = if path.is_dir() {
            path.join("main.rs").is_file() && name != "it"
        } else {
            name.ends_with(".rs")
        };
        binary.then_some(name)
    });
    assert!(
        others.is_empty(),
        "{others:?} would build test binaries of their own: move each into tests/it/ as a \
         module (`mod name;` in tests/it/main.rs, `use crate::support;` for the harness)"
    );
}
