//! The wall clock, in the units the store keeps: Unix milliseconds; and an [`Alarm`] set to
//! one of its times.
//!
//! A leaf: it imports nothing of the crate, so every layer may ask it the time.

use std::cell::Cell;
use std::task::{Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in Unix milliseconds: message expiry survives restarts, so it cannot
/// use a monotonic clock.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// When something is next due, in Unix milliseconds, and the task that waits for it: the
/// one task that sends scheduled messages waits on it (`doors::ntfy::delayed`), and a
/// publish that schedules a message wakes it if that one is due earlier. Event loop only.
///
/// The task sets the time it read from the store; a time asked for since the task's last
/// [`Alarm::set`] is never lost by it (the store's answer may predate it), so `set` keeps
/// the earlier of the two.
pub struct Alarm {
    due: Cell<u64>,
    /// The earliest time asked for with [`Alarm::earlier`] since the last [`Alarm::set`].
    asked: Cell<u64>,
    /// Changes with every [`Alarm::earlier`] that moved the time, so a waiter knows.
    moves: Cell<u64>,
    waker: Cell<Option<Waker>>,
}

impl Default for Alarm {
    fn default() -> Self {
        Alarm {
            due: Cell::new(u64::MAX),
            asked: Cell::new(u64::MAX),
            moves: Cell::new(0),
            waker: Cell::new(None),
        }
    }
}

impl Alarm {
    /// The time it is set to; `u64::MAX`: nothing is due.
    pub fn due(&self) -> u64 {
        self.due.get()
    }

    /// Sets it to `at` (`u64::MAX`: nothing), as the waiting task read it from the store,
    /// or to an earlier time asked for since the last `set`.
    pub fn set(&self, at: u64) {
        self.due.set(at.min(self.asked.replace(u64::MAX)));
    }

    /// Asks for `at`: moves the time there if that is earlier, and wakes the waiting task.
    pub fn earlier(&self, at: u64) {
        self.asked.set(self.asked.get().min(at));
        if at < self.due.get() {
            self.due.set(at);
            self.moves.set(self.moves.get().wrapping_add(1));
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }

    /// Resolves once [`Alarm::earlier`] moves the time (from the first poll on).
    pub async fn moved(&self) {
        let seen = self.moves.get();
        std::future::poll_fn(|cx| {
            if self.moves.get() == seen {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_asked_for_while_the_task_reads_the_store_is_kept() {
        let alarm = Alarm::default();
        alarm.set(500);
        alarm.earlier(900);
        assert_eq!(alarm.due(), 500, "a later time does not move it");
        // The task read `nothing due` on a snapshot that predates the message due at 900.
        alarm.set(u64::MAX);
        assert_eq!(alarm.due(), 900);
        alarm.set(u64::MAX);
        assert_eq!(alarm.due(), u64::MAX, "asked once, kept once");
        alarm.earlier(300);
        alarm.set(200);
        assert_eq!(alarm.due(), 200);
    }
}
