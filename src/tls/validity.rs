//! When a certificate expires: its `notAfter`, read from the DER of an X.509 certificate
//! (RFC 5280 4.1) by walking just far enough, so that the admin page can show it.
//!
//! Only what leads to `validity` is read: the outer `SEQUENCE`, `tbsCertificate`, the
//! optional `[0] version`, `serialNumber`, `signature`, `issuer`, then `validity`'s two
//! times (`UTCTime` or `GeneralizedTime`, in UTC). Nothing here checks the certificate:
//! rustls loaded it already. Malformed input gives `None`, never a panic.

/// `notAfter` of a DER certificate, in Unix seconds.
pub fn not_after(der: &[u8]) -> Option<u64> {
    let (certificate, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(certificate, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs, VERSION)?.1;
    }
    let (_, rest) = element(tbs, INTEGER)?;
    let (_, rest) = element(rest, SEQUENCE)?;
    let (_, rest) = element(rest, SEQUENCE)?;
    let (validity, _) = element(rest, SEQUENCE)?;
    let (_, rest) = any_element(validity)?;
    let (&tag, _) = rest.split_first()?;
    let (time, _) = element(rest, tag)?;
    match tag {
        UTC_TIME => utc_time(time),
        GENERALIZED_TIME => generalized_time(time),
        _ => None,
    }
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The contents of the element at the start of `input` if its tag is `tag`, and what
/// follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    any_element(input)
}

/// The contents of the element at the start of `input`, whatever its tag, and what
/// follows it (definite lengths only, as DER has).
fn any_element(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.get(1..)?.split_first()?;
    let (len, rest) = match first {
        short @ 0..=0x7f => (usize::from(short), rest),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7f);
            let bytes = rest.get(..count)?;
            let len = bytes
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            (len, &rest[count..])
        }
        _ => return None,
    };
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// `YYMMDDHHMMSSZ`; years 50 to 99 are 19xx (RFC 5280 4.1.2.5.1).
fn utc_time(text: &[u8]) -> Option<u64> {
    let digits = text.strip_suffix(b"Z")?;
    if digits.len() != 12 {
        return None;
    }
    let yy = number(&digits[..2])?;
    let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
    seconds(year, &digits[2..])
}

/// `YYYYMMDDHHMMSSZ`.
fn generalized_time(text: &[u8]) -> Option<u64> {
    let digits = text.strip_suffix(b"Z")?;
    if digits.len() != 14 {
        return None;
    }
    seconds(number(&digits[..4])?, &digits[4..])
}

/// Unix seconds of `year` and `MMDDHHMMSS`.
fn seconds(year: u64, rest: &[u8]) -> Option<u64> {
    let field = |i: usize| number(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61
        && year >= 1970;
    valid.then(|| days_since_epoch(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`), for years from 1970 on.
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn number(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"));
        CertificateDer::from_pem_file(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .to_vec()
    }

    /// What `openssl x509 -enddate` says of the test certificates (2126-11-13, a
    /// `GeneralizedTime`), as `date -d … +%s` counts it.
    #[test]
    fn reads_the_end_of_the_test_certificates() {
        assert_eq!(not_after(&fixture("first.crt")), Some(4_950_269_571));
        assert_eq!(not_after(&fixture("rsa.crt")), Some(4_950_269_573));
        assert_eq!(not_after(&fixture("ca.crt")), Some(4_950_269_570));
    }

    #[test]
    fn dates_count_from_the_epoch() {
        assert_eq!(utc_time(b"700101000000Z"), Some(0));
        assert_eq!(utc_time(b"000229120000Z"), Some(951_825_600));
        assert_eq!(utc_time(b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(generalized_time(b"20500101000000Z"), Some(2_524_608_000));
        assert_eq!(utc_time(b"991301000000Z"), None);
        assert_eq!(utc_time(b"9912010000Z"), None);
    }

    #[test]
    fn malformed_certificates_give_nothing() {
        let der = fixture("first.crt");
        for len in 0..der.len().min(400) {
            let _ = not_after(&der[..len]);
        }
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(not_after(b"not a certificate"), None);
    }
}
