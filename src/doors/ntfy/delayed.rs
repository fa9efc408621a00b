//! Delayed delivery, as ntfy does it: a publish with `X-Delay`, `Delay`, `X-At`, `At`,
//! `X-In` or `In` (or JSON `delay`) is stored now and sent later; and the task that sends
//! scheduled messages when they are due.
//!
//! A delay is a Unix time in seconds (`1639194738`), a duration in ntfy's words (`30m`,
//! `2 hours`, `1d`, `10 seconds`) or Go's (`1h30m`, `90s`, `1.5h`). ntfy's natural language
//! (`tomorrow, 10am`) is not understood: it depends on a time zone this server does not
//! keep, and is refused with ntfy's 40004 rather than guessed. The time must be at least
//! `min_delay_secs` and at most `max_delay_secs` ahead (ntfy's 40005 and 40006); a delayed
//! message must be cached (40002). The answer is ntfy's message object, its `time` the time
//! it is sent.
//!
//! The message waits in the store (`crate::store::schedule`) until it is due; then the task
//! [`run`] moves it into its topic's queue, in one transaction, whether the server was
//! running at that time or starts after it. Streams and polls see it only then, under a
//! new id, with the id its sender was answered as its sequence id (unless the sender gave
//! one), so that the sender updates, clears and deletes it by that id. [`sent`] is where a
//! delayed message is published to its topic: what follows a publish happens there for it,
//! as after `super::publish` for the others. Polls with `scheduled=1` list what is waiting.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;

use super::encode::message_id;
use crate::clock::now_millis;
use crate::delivery::topics::schedule_to_topic;
use crate::error::{ApiError, NtfyCode};
use crate::limits::AddrKey;
use crate::state::ServerState;
use crate::store::queue::NewMessage;
use crate::store::schedule::{self, Released, Scheduled};

/// Scheduled messages moved into their queues per transaction; bounds one commit.
const RELEASE_BATCH: usize = 64;
/// The longest the task sleeps without looking at the clock again: a wall clock set
/// forward (NTP at a router's boot) is noticed within it.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// [`LONGEST_SLEEP`] on a store that other nodes share (Redis): they schedule messages this
/// node hears nothing of, and one whose node died is sent by another this late at most.
const LONGEST_SLEEP_SHARED: Duration = Duration::from_secs(5);
/// How long the task waits before trying again after the store failed.
const RETRY: Duration = Duration::from_secs(5);

const DOCS: &str = "https://ntfy.sh/docs/publish/#scheduled-delivery";
/// ntfy's 40002: a delayed message must be cached.
pub const NO_CACHE: NtfyCode = NtfyCode {
    code: 40002,
    message: "cannot disable cache for delayed message",
    link: "",
};
/// ntfy's 40004.
pub const CANNOT_PARSE: NtfyCode = NtfyCode {
    code: 40004,
    message: "invalid delay parameter: unable to parse delay",
    link: DOCS,
};
/// ntfy's 40005.
pub const TOO_SMALL: NtfyCode = NtfyCode {
    code: 40005,
    message: "invalid delay parameter: too small, please refer to the docs",
    link: DOCS,
};
/// ntfy's 40006.
pub const TOO_LARGE: NtfyCode = NtfyCode {
    code: 40006,
    message: "invalid delay parameter: too large, please refer to the docs",
    link: DOCS,
};

/// Schedules `message` for `topic`, due at `due` (`crate::delivery::topics`), its slot
/// named as the door names message ids. A future of its own, boxed: the publish handler's
/// state machine does not carry it (router builds count every kilobyte).
pub fn schedule<'a>(
    state: &'a ServerState,
    topic: &str,
    user: Option<u64>,
    from: Option<AddrKey>,
    message: NewMessage,
    due: u64,
) -> Pin<Box<dyn Future<Output = Result<Scheduled, ApiError>> + 'a>> {
    let topic = topic.to_owned();
    Box::pin(schedule_to_topic(
        state, topic, user, from, message, due, message_id,
    ))
}

/// When a message with delay `text` is due (Unix milliseconds), checked against
/// `min_delay_secs` and `max_delay_secs` as ntfy checks them (whole seconds).
pub fn due_time(state: &ServerState, text: &str, cached: bool) -> Result<u64, ApiError> {
    if !cached {
        return Err(ApiError::BadRequestCoded(
            &NO_CACHE,
            "a delayed message waits in the store: `Cache: no` cannot go with a delay".into(),
        ));
    }
    let now = now_millis();
    let due = parse(text.trim(), now).ok_or_else(|| {
        ApiError::BadRequestCoded(
            &CANNOT_PARSE,
            format!(
                "{text:?}: a delay is a Unix time, or a duration such as 30m, 2h, 1d or \
                 1h30m (dates in words are not understood)"
            ),
        )
    })?;
    let limits = &state.config().limits;
    let (now_secs, due_secs) = (now / 1000, due / 1000);
    if due_secs < now_secs + limits.min_delay.as_secs() {
        return Err(ApiError::BadRequestCoded(
            &TOO_SMALL,
            format!("a delay is at least {} s", limits.min_delay.as_secs()),
        ));
    }
    if due_secs > now_secs + limits.max_delay.as_secs() {
        return Err(ApiError::BadRequestCoded(
            &TOO_LARGE,
            format!("a delay is at most {} s", limits.max_delay.as_secs()),
        ));
    }
    Ok(due)
}

/// The time `text` names, in Unix milliseconds: a Unix time in seconds not before `now`,
/// or `now` plus a duration.
fn parse(text: &str, now: u64) -> Option<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text.parse().ok()?;
        let at = secs.checked_mul(1000)?;
        return (at >= now / 1000 * 1000).then_some(at);
    }
    let ms = in_words(text).or_else(|| go_duration(text))?;
    now.checked_add(ms)
}

/// ntfy's durations in words: a number, optional spaces, and a unit (`d`, `day`, `days`,
/// `h`, `hour(s)`, `m`, `min(s)`, `minute(s)`, `s`, `sec(s)`, `second(s)`), in any case.
fn in_words(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let number: u64 = text[..digits].parse().ok()?;
    let unit = text[digits..].trim_start().to_ascii_lowercase();
    let ms = match unit.as_str() {
        "d" | "day" | "days" => 86_400_000,
        "h" | "hour" | "hours" => 3_600_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        _ => return None,
    };
    number.checked_mul(ms)
}

/// Go's `time.ParseDuration` without a sign: numbers with an optional fraction, each with
/// a unit of `h`, `m`, `s`, `ms`, `us` (or `µs`) or `ns` (`1h30m`, `1.5h`); in ms.
fn go_duration(text: &str) -> Option<u64> {
    match text {
        "" => return None,
        "0" => return Some(0),
        _ => {}
    }
    let mut rest = text;
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let (unit_ms, len) = [
            ("ns", 1e-6),
            ("us", 1e-3),
            ("µs", 1e-3),
            ("ms", 1.0),
            ("s", 1000.0),
            ("m", 60_000.0),
            ("h", 3_600_000.0),
        ]
        .iter()
        .filter(|(unit, _)| rest.starts_with(unit))
        .map(|(unit, ms)| (*ms, unit.len()))
        .max_by_key(|(_, len)| *len)?;
        total += number * unit_ms;
        rest = &rest[len..];
    }
    (total.is_finite() && total < u64::MAX as f64).then_some(total as u64)
}

/// Sends scheduled messages when they are due, for as long as the server runs: sleeps
/// until the earliest is due (or a publish schedules an earlier one, `state.scheduled`),
/// looking at the store again at least every [`LONGEST_SLEEP`] (or
/// [`LONGEST_SLEEP_SHARED`]), then moves what is due into
/// the queues, a batch per transaction, and sends each.
pub async fn run(state: Rc<ServerState>) {
    let first = state.store.read(schedule::next_due).await;
    match first {
        Ok(due) => state.scheduled.set(due.unwrap_or(u64::MAX)),
        Err(e) => {
            log::warn!("reading the scheduled messages failed ({e}); trying again");
            state.scheduled.set(0);
        }
    }
    loop {
        let now = now_millis();
        let due = state.scheduled.due();
        if due > now {
            let longest = if state.config().store.is_empty() {
                LONGEST_SLEEP
            } else {
                LONGEST_SLEEP_SHARED
            };
            let wait = Duration::from_millis(due - now).min(longest);
            let slept = future::or(
                async {
                    Timer::at(Instant::now() + wait).await;
                    true
                },
                async {
                    state.scheduled.moved().await;
                    false
                },
            )
            .await;
            // What other nodes scheduled (see `LONGEST_SLEEP_SHARED`).
            if slept && let Ok(Some(next)) = state.store.read(schedule::next_due).await {
                state.scheduled.earlier(next);
            }
            continue;
        }
        let released = state
            .store
            .write(move |t, m| {
                let released = schedule::release(t, m, now, RELEASE_BATCH)?;
                Ok((released, schedule::next_due(t)?))
            })
            .await;
        match released {
            Ok((released, next)) => {
                state.scheduled.set(next.unwrap_or(u64::MAX));
                for message in released {
                    sent(&state, message);
                }
            }
            Err(e) => {
                log::warn!("sending scheduled messages failed ({e}); trying again");
                Timer::after(RETRY).await;
            }
        }
    }
}

/// A delayed message is published to its topic now: it is in the queue (committed), and
/// the live streams have it through the store's events; iPhones are woken for it
/// (`upstream_base_url`), as after any publish.
fn sent(state: &ServerState, message: Released) {
    crate::metrics::bump(&state.counters.scheduled_sent);
    super::wake_iphones_for(state, &message.topic, message.id);
    crate::delivery::announce(state, message.queue, message.id, message.record, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_in_ntfy_words_go_words_and_unix_times() {
        let now = 1_700_000_000_000;
        for (text, ms) in [
            ("30m", 30 * 60_000),
            ("2 hours", 2 * 3_600_000),
            ("1d", 86_400_000),
            ("10 Seconds", 10_000),
            ("1h30m", 90 * 60_000),
            ("1.5h", 90 * 60_000),
            ("90s", 90_000),
            ("2500ms", 2_500),
        ] {
            assert_eq!(parse(text, now), Some(now + ms), "{text}");
        }
        assert_eq!(parse("1700000600", now), Some(1_700_000_600_000));
        for bad in [
            "1699999999",
            "tomorrow, 10am",
            "",
            "m",
            "10 parsecs",
            "1h30",
            "-5m",
        ] {
            assert_eq!(parse(bad, now), None, "{bad:?}");
        }
    }
}
