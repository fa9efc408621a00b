//! The page's files: HTML, CSS and script, gzipped at build time (`build.rs`, from
//! `src/doors/admin/page/`) and served as they are, with `Content-Encoding: gzip`.
//!
//! The binary holds only the gzip of each file, so it has nothing to send a client that
//! refuses gzip: that client gets 406 (browsers all take gzip; a request without
//! `Accept-Encoding` takes anything, RFC 9110 12.5.3). Each file has an entity tag made
//! from its bytes at build time; a browser revalidates (`no-cache`) and gets 304 while the
//! binary is the same.

use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::route::Outcome;

/// One served file.
struct Asset {
    /// Its name under `/admin/`.
    name: &'static str,
    content_type: &'static str,
    /// Its entity tag, quoted.
    etag: &'static str,
    /// Its length before compression (for the tests of its size).
    #[allow(dead_code)]
    plain_len: usize,
    /// The file, gzipped.
    gzip: &'static [u8],
}

/// The files, as build.rs made them.
const ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/admin_assets.rs"));

/// `GET /admin/`: the page. `/admin` without the slash is moved there, so that the page's
/// relative links resolve under `/admin/` (a relative `Location`, which also holds behind
/// a proxy that adds a prefix).
pub fn page(req: &Request) -> Outcome {
    if !req.path.ends_with('/') {
        return Response::new(308)
            .header("Location", "admin/")
            .with_body(
                "text/plain; charset=utf-8",
                "the admin page is at /admin/\n",
            )
            .into();
    }
    serve(req, "index.html").unwrap_or_else(|e| e.to_response().into())
}

/// `GET /admin/<name>`: one of the page's files.
pub fn file(req: &Request, name: &str) -> Result<Outcome, ApiError> {
    serve(req, name)
}

fn serve(req: &Request, name: &str) -> Result<Outcome, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or(ApiError::NotFound("no such file"))?;
    let revalidated = req
        .header_values("if-none-match")
        .flat_map(|line| line.split(','))
        .any(|tag| tag.trim() == asset.etag || tag.trim() == "*");
    let response = if revalidated {
        Response::new(304)
    } else if accepts_gzip(req) {
        Response::new(200)
            .with_body(asset.content_type, asset.gzip)
            .header("Content-Encoding", "gzip")
    } else {
        return Err(ApiError::Http(
            406,
            "the admin page is served gzipped only (Accept-Encoding: gzip)",
        ));
    };
    Ok(response
        .header("ETag", asset.etag)
        .header("Vary", "Accept-Encoding")
        .header("Cache-Control", "no-cache")
        .into())
}

/// Whether `Accept-Encoding` takes gzip: no such header, or `gzip`/`x-gzip` (else `*`)
/// with a weight above 0.
fn accepts_gzip(req: &Request) -> bool {
    let mut lines = req.header_values("accept-encoding").peekable();
    if lines.peek().is_none() {
        return true;
    }
    let (mut gzip, mut any) = (None, None);
    for entry in lines.flat_map(|line| line.split(',')) {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        // A weight is 0 to 1 with at most three decimals (RFC 9110 12.4.2): only its
        // zero matters here, and a zero is written with zeros and a point alone.
        let refused = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .any(|q| q.trim().bytes().all(|b| b == b'0' || b == b'.'));
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(!refused),
            "*" => any = Some(!refused),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(accept: &[&str]) -> Request {
        let head = format!(
            "GET /admin/ HTTP/1.1\r\nHost: x\r\n{}\r\n",
            accept
                .iter()
                .map(|v| format!("Accept-Encoding: {v}\r\n"))
                .collect::<String>()
        );
        let head =
            crate::http::parse::parse_head(head.as_bytes(), &crate::config::Limits::default())
                .expect("a valid head")
                .expect("a whole head");
        Request::from_head(head, Vec::new())
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        for (accept, takes) in [
            (&[][..], true),
            (&["gzip, deflate, br"][..], true),
            (&["br", "GZIP;q=0.5"][..], true),
            (&["*"][..], true),
            (&["identity"][..], false),
            (&["gzip;q=0, *"][..], false),
            (&["gzip;q=0.000"][..], false),
            (&["gzip;q=0.001"][..], true),
            (&["br;q=1, *;q=0"][..], false),
        ] {
            assert_eq!(accepts_gzip(&request(accept)), takes, "{accept:?}");
        }
    }

    #[test]
    fn every_file_is_gzip_with_its_own_tag() {
        for (i, asset) in ASSETS.iter().enumerate() {
            assert_eq!(&asset.gzip[..2], &[0x1f, 0x8b], "{}", asset.name);
            assert!(asset.gzip.len() < asset.plain_len, "{}", asset.name);
            assert!(ASSETS[i + 1..].iter().all(|other| other.etag != asset.etag));
        }
    }
}
