//! The server refuses database files it must not touch, with a clear message and a non-zero
//! exit, and never modifies them: a foreign redb file, a newer schema, garbage, a missing
//! directory.

use crate::support;

use std::path::Path;

use redb::{ReadableDatabase, TableDefinition};
use support::{TIMEOUT, openpush_command, output_within, temp_dir};

/// Runs `openpush serve` on `db` and returns (exit code, stderr); it must exit by itself.
fn serve(db: &Path) -> (i32, String) {
    let child = openpush_command(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(child, TIMEOUT, "a server on a database it must refuse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn foreign_redb_file_is_refused_and_left_untouched() {
    let dir = temp_dir("foreign-db");
    let db = dir.join("other.redb");
    const OTHER: TableDefinition<&str, &str> = TableDefinition::new("their_table");
    {
        let d = redb::Database::create(&db).unwrap();
        let t = d.begin_write().unwrap();
        t.open_table(OTHER).unwrap().insert("k", "v").unwrap();
        t.commit().unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let (code, err) = serve(&db);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not an openpush database"), "{err}");
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the file was modified"
    );
    let d = redb::Database::open(&db).unwrap();
    let r = d.begin_read().unwrap();
    assert_eq!(
        r.open_table(OTHER)
            .unwrap()
            .get("k")
            .unwrap()
            .unwrap()
            .value(),
        "v"
    );
}

#[test]
fn database_from_a_newer_schema_is_refused() {
    let dir = temp_dir("newer-db");
    let db = dir.join("openpush.redb");
    let out = openpush_command(["user", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    {
        let d = redb::Database::open(&db).unwrap();
        let t = d.begin_write().unwrap();
        t.open_table(META)
            .unwrap()
            .insert("schema_version", 99)
            .unwrap();
        t.commit().unwrap();
    }
    let (code, err) = serve(&db);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("schema version 99"), "{err}");
}

#[test]
fn garbage_file_is_refused_and_left_untouched() {
    let dir = temp_dir("garbage-db");
    let db = dir.join("openpush.redb");
    let garbage: Vec<u8> = (0..70_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    let (code, err) = serve(&db);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("openpush: "), "{err}");
    assert!(
        std::fs::read(&db).unwrap() == garbage,
        "the file was modified"
    );
}

#[test]
fn missing_directory_is_a_clear_error() {
    let dir = temp_dir("missing-dir");
    let (code, err) = serve(&dir.join("no/such/dir/openpush.redb"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot open") && err.contains("No such file"),
        "{err}"
    );
}
