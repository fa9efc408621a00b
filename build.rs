//! Build script: with the `admin` feature, the admin page's files (`src/doors/admin/page/`)
//! gzipped with zopfli into `OUT_DIR`, and `admin_assets.rs` naming them, for
//! `doors::admin::assets` to include. The binary holds only the compressed bytes; zopfli
//! is a build dependency and never enters it. Without the feature this does nothing.

fn main() {
    #[cfg(feature = "admin")]
    admin::build();
}

#[cfg(feature = "admin")]
mod admin {
    use std::fmt::Write as _;
    use std::path::Path;

    const PAGE: &str = "src/doors/admin/page";

    /// What is served: its name under `/admin/`, its type, and the files it is made of,
    /// joined in this order.
    const SERVED: &[(&str, &str, &[&str])] = &[
        ("index.html", "text/html; charset=utf-8", &["index.html"]),
        ("admin.css", "text/css; charset=utf-8", &["admin.css"]),
        (
            "admin.js",
            "text/javascript; charset=utf-8",
            &["qr.js", "admin.js"],
        ),
    ];

    pub fn build() {
        println!("cargo:rerun-if-changed={PAGE}");
        let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
        let mut table = String::from("&[\n");
        for (name, content_type, parts) in SERVED {
            let mut source = Vec::new();
            for part in *parts {
                let path = Path::new(PAGE).join(part);
                println!("cargo:rerun-if-changed={}", path.display());
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                source.extend_from_slice(compact(&text).as_bytes());
            }
            let gzip = gzip(&source);
            let file = Path::new(&out).join(format!("{name}.gz"));
            std::fs::write(&file, &gzip).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let _ = writeln!(
                table,
                "    Asset {{ name: {name:?}, content_type: {content_type:?}, etag: \"\\\"{:016x}\\\"\", \
                 plain_len: {}, gzip: include_bytes!({:?}) }},",
                fnv1a(&gzip),
                source.len(),
                file.display().to_string()
            );
        }
        table.push_str("]\n");
        let generated = Path::new(&out).join("admin_assets.rs");
        std::fs::write(&generated, table).expect("OUT_DIR is writable");
    }

    /// The text without the indentation of its lines, blank lines and lines that are a
    /// `//` comment: gzip takes most of that anyway, this the rest. The page's files keep
    /// no string across lines and no line that starts with `//` inside one (the browser
    /// check runs the page as served).
    fn compact(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with("//") {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        zopfli::compress(
            zopfli::Options::default(),
            zopfli::Format::Gzip,
            data,
            &mut out,
        )
        .expect("compressing into memory does not fail");
        out
    }

    /// FNV-1a: the entity tag of a file, which changes with its bytes.
    fn fnv1a(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
            (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}
