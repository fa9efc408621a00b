//! Where a stream stands in its queues and which messages it may send: the rules of its
//! order, apart from its I/O, so that they can be checked under any interleaving of the
//! store's events (`interleavings`).
//!
//! The invariant: a stream never sends a stored message with id N while a message of its
//! queues with an id below N is stored (committed, or staged by the group being committed),
//! not expired, not confirmed, and not sent by this stream. So a device that confirms up to
//! the last id it read (`Last-Event-ID`, ntfy `since=`) confirms only what it has read.
//!
//! Messages come two ways: pages read from the store (snapshots of the last commit) and
//! messages handed over by the hub while their group commits, before its fsync. The pages
//! come in id order and move the cursor. A handed stored message is sent only when the
//! stream is caught up: its reads have covered ([`Page::complete_through`]) every message
//! below it that did not come through its slot. Those are the messages staged before the
//! stream attached (up to [`Hub::staged_through`](crate::hub::Hub::staged_through) then),
//! the ones the slot dropped, and the handed ones this stream skipped while it was behind;
//! they are read from the store once their group has committed, whose notification comes
//! to the slot. Everything staged after the attach reaches the slot in id order, so a
//! caught-up stream that takes a handed message has sent every message below it.
//!
//! Messages with a TTL of 0 are never stored: they are sent as they come, outside the order.

use crate::hub::Handed;
use crate::store::queue::{Cursor, Page};

/// A stream's place in its queues.
#[derive(Clone, Debug)]
pub struct Position {
    /// The last stored message sent; the next read starts after it.
    pub cursor: Cursor,
    /// The stream takes no handed stored message until its reads have covered every id up
    /// to this one; 0: it is caught up.
    behind_through: u64,
    /// The store may hold messages after the cursor that were not read yet.
    more_stored: bool,
}

impl Position {
    /// A stream that starts at `cursor`, attached when messages up to `staged_before` had
    /// been staged.
    pub fn new(cursor: Cursor, staged_before: u64) -> Position {
        Position {
            cursor,
            behind_through: staged_before,
            more_stored: true,
        }
    }

    /// Whether the stream must read the next page from the store now; it then owes that
    /// read (see [`Position::page_read`]) before it takes anything handed.
    pub fn take_read(&mut self) -> bool {
        std::mem::take(&mut self.more_stored)
    }

    /// A commit stored messages in the stream's queues.
    pub fn stored(&mut self) {
        self.more_stored = true;
    }

    /// A page the stream has read and sends whole, in order.
    pub fn page_read(&mut self, page: &Page) {
        if let Some(&(_, last, _)) = page.messages.last() {
            self.cursor.after = self.cursor.after.max(last);
        }
        self.more_stored |= page.more;
        if page.complete_through >= self.behind_through {
            self.behind_through = 0;
        }
    }

    /// Messages of the stream's queues up to `up_to` that were being committed never
    /// reached it (its slot dropped them).
    pub fn dropped(&mut self, up_to: u64) {
        if up_to > self.cursor.after {
            self.behind_through = self.behind_through.max(up_to);
        }
    }

    /// Whether to send a handed message now; a stored one the stream does not send now
    /// comes from the store after its commit.
    pub fn take(&mut self, message: &Handed) -> bool {
        if !message.stored {
            return true;
        }
        if message.id <= self.cursor.after {
            return false;
        }
        if self.behind_through > 0 {
            self.behind_through = self.behind_through.max(message.id);
            return false;
        }
        self.cursor.after = message.id;
        true
    }
}
