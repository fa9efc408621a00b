//! ntfy access tokens: `tk_` and 29 letters and digits (172 random bits), a user's
//! credential for the ntfy door that can be listed, labelled, given an expiry and revoked
//! one by one without touching the password.
//!
//! The token itself is never stored. `tokens` is keyed by the first 16 bytes of its BLAKE2s
//! digest, so a lookup's timing depends on the digest, not on the token; the record keeps
//! the other 16 bytes, compared in constant time. `token_by_user` lists a user's tokens.
//! Listings name a token by its number (`TokenRecord::id`), which the CLI and the API also
//! take. Deleting a token records its revocation ([`Revocation::Token`]), so that every
//! stream opened with it ends; deleting its user deletes them all (the user's revocation
//! ends their streams).

use crate::store::kv::{ReadableTable, WriteTransaction};

use super::memory::Memory;
use super::tables::{NEXT_TOKEN_ID, TOKEN_BY_USER, TOKENS, Tables, damaged, next_id};
use super::{Outcome, Refusal, Result, Revocation, TokenRecord};
use crate::secret;

/// How many bytes of the digest key the `tokens` table; the rest is the record's `check`.
const KEY_BYTES: usize = 16;

/// The digest of a token, split into its table key and its check.
fn split_digest(token: &str) -> ([u8; KEY_BYTES], [u8; 32 - KEY_BYTES]) {
    let digest = secret::digest(token.as_bytes());
    let (key, check) = digest.split_at(KEY_BYTES);
    (
        key.try_into().expect("16 bytes"),
        check.try_into().expect("16 bytes"),
    )
}

fn decode(bytes: &[u8]) -> Result<TokenRecord> {
    TokenRecord::decode(bytes).ok_or_else(|| damaged("token", "record"))
}

/// The record of `token`, if it is one of this server's (expired or not).
pub fn by_token(t: &impl Tables, token: &str) -> Result<Option<([u8; KEY_BYTES], TokenRecord)>> {
    if !secret::is_access_token_shaped(token) {
        return Ok(None);
    }
    let (key, check) = split_digest(token);
    let table = t.bytes(TOKENS)?;
    let Some(bytes) = table.get(key.as_slice())? else {
        return Ok(None);
    };
    let record = decode(bytes.value())?;
    Ok(secret::constant_time_eq(&record.check, &check).then_some((key, record)))
}

/// A user's tokens, oldest first, with their table keys.
pub fn of_user(t: &impl Tables, user_id: u64) -> Result<Vec<(Vec<u8>, TokenRecord)>> {
    let by_user = t.bytes(TOKEN_BY_USER)?;
    let tokens = t.bytes(TOKENS)?;
    let mut out = Vec::new();
    for entry in by_user.range((user_id, 0)..=(user_id, u64::MAX))? {
        let key = entry?.1.value().to_vec();
        if let Some(bytes) = tokens.get(key.as_slice())? {
            out.push((key, decode(bytes.value())?));
        }
    }
    Ok(out)
}

/// One of a user's tokens, named by the token itself or by its number.
pub fn find_of(
    t: &impl Tables,
    user_id: u64,
    ident: &str,
) -> Result<Option<(Vec<u8>, TokenRecord)>> {
    if let Some(id) = crate::names::parse_id(ident.trim_start_matches('#')) {
        return Ok(of_user(t, user_id)?.into_iter().find(|(_, r)| r.id == id));
    }
    Ok(by_token(t, ident)?
        .filter(|(_, r)| r.user_id == user_id)
        .map(|(key, r)| (key.to_vec(), r)))
}

/// What a new token is given.
pub struct NewToken<'a> {
    /// Its user.
    pub user_id: u64,
    /// Its label.
    pub label: &'a str,
    /// Unix seconds; 0: never.
    pub expires: u64,
    /// The address it was made from, as its first "last origin".
    pub origin: &'a str,
    /// Unix seconds now.
    pub now: u64,
}

/// Makes a token for a user that has fewer than `max` of them; the token is returned once,
/// here, and never again.
pub fn create(
    txn: &WriteTransaction,
    new: &NewToken,
    max: usize,
) -> Result<Outcome<(String, TokenRecord)>> {
    if of_user(txn, new.user_id)?.len() >= max {
        return Ok(Err(Refusal::Limit(format!(
            "a user may have at most {max} access tokens; delete one first"
        ))));
    }
    let token = secret::new_access_token();
    let (key, check) = split_digest(&token);
    let record = TokenRecord {
        id: next_id(txn, NEXT_TOKEN_ID)?,
        user_id: new.user_id,
        check: check.to_vec(),
        label: new.label.to_owned(),
        expires: new.expires,
        last_access: new.now,
        last_origin: new.origin.to_owned(),
    };
    txn.open_table(TOKENS)?
        .insert(key.as_slice(), record.encode().as_slice())?;
    txn.open_table(TOKEN_BY_USER)?
        .insert((new.user_id, record.id), key.as_slice())?;
    Ok(Ok((token, record)))
}

/// Gives one of a user's tokens a new label and/or expiry.
pub fn update(
    txn: &WriteTransaction,
    user_id: u64,
    ident: &str,
    label: Option<&str>,
    expires: Option<u64>,
) -> Result<Outcome<TokenRecord>> {
    let Some((key, mut record)) = find_of(txn, user_id, ident)? else {
        return Ok(Err(Refusal::NotFound));
    };
    if let Some(label) = label {
        label.clone_into(&mut record.label);
    }
    if let Some(expires) = expires {
        record.expires = expires;
    }
    txn.open_table(TOKENS)?
        .insert(key.as_slice(), record.encode().as_slice())?;
    Ok(Ok(record))
}

/// Deletes one of a user's tokens; the streams opened with it end.
pub fn delete(
    txn: &WriteTransaction,
    memory: &mut Memory,
    user_id: u64,
    ident: &str,
) -> Result<Outcome<TokenRecord>> {
    let Some((key, record)) = find_of(txn, user_id, ident)? else {
        return Ok(Err(Refusal::NotFound));
    };
    txn.open_table(TOKENS)?.remove(key.as_slice())?;
    txn.open_table(TOKEN_BY_USER)?
        .remove((user_id, record.id))?;
    memory.revoke(Revocation::Token {
        user: user_id,
        token: record.id,
    });
    Ok(Ok(record))
}

/// Deletes every token of a user that is being deleted.
pub fn delete_all_of(txn: &WriteTransaction, user_id: u64) -> Result<()> {
    let tokens = of_user(txn, user_id)?;
    let mut table = txn.open_table(TOKENS)?;
    let mut by_user = txn.open_table(TOKEN_BY_USER)?;
    for (key, record) in tokens {
        table.remove(key.as_slice())?;
        by_user.remove((user_id, record.id))?;
    }
    Ok(())
}

/// Records a token's last use, if the token is still there.
pub fn touch(txn: &WriteTransaction, key: &[u8], now: u64, origin: &str) -> Result<()> {
    let mut table = txn.open_table(TOKENS)?;
    let Some(mut record) = table.get(key)?.map(|b| decode(b.value())).transpose()? else {
        return Ok(());
    };
    record.last_access = record.last_access.max(now);
    origin.clone_into(&mut record.last_origin);
    table.insert(key, record.encode().as_slice())?;
    Ok(())
}

/// Whether the stream opened with token `id` of `user_id` lost it.
pub fn is_gone(t: &impl Tables, user_id: u64, id: u64) -> Result<bool> {
    Ok(t.bytes(TOKEN_BY_USER)?.get((user_id, id))?.is_none())
}

#[cfg(test)]
mod tests {
    use super::super::tables::in_memory;
    use super::*;

    #[test]
    fn a_token_is_found_by_itself_only_and_its_deletion_ends_its_streams() {
        let db = in_memory();
        let t = db.begin_write().unwrap();
        let mut m = Memory::default();
        // Tokens are made for users the caller found; no user record is needed here.
        let ann = 7;
        let new = NewToken {
            user_id: ann,
            label: "Home Assistant",
            expires: 0,
            origin: "192.0.2.1",
            now: 1000,
        };
        let (token, record) = create(&t, &new, 2).unwrap().unwrap();
        assert!(token.starts_with("tk_") && token.len() == 32, "{token}");
        assert_eq!(by_token(&t, &token).unwrap().unwrap().1, record);
        let mut other = token.clone().into_bytes();
        other[31] = if other[31] == b'a' { b'b' } else { b'a' };
        let other = String::from_utf8(other).unwrap();
        assert!(by_token(&t, &other).unwrap().is_none());
        create(&t, &new, 2).unwrap().unwrap();
        assert!(matches!(
            create(&t, &new, 2).unwrap(),
            Err(Refusal::Limit(_))
        ));
        let named = format!("#{}", record.id);
        let changed = update(&t, ann, &named, Some("HA"), Some(5))
            .unwrap()
            .unwrap();
        assert_eq!((changed.label.as_str(), changed.expires), ("HA", 5));
        assert_eq!(of_user(&t, ann).unwrap().len(), 2);
        delete(&t, &mut m, ann, &token).unwrap().unwrap();
        assert!(by_token(&t, &token).unwrap().is_none());
        assert!(is_gone(&t, ann, record.id).unwrap());
        assert_eq!(
            m.take_revoked(),
            [Revocation::Token {
                user: ann,
                token: record.id
            }]
        );
    }
}
