//! How often each device opened its stream lately, so that one that reconnects all the time
//! (a flaky network, a battery saver that kills its connection) can be told so: NextPush's
//! `warning` event, which the app shows to its user.
//!
//! Opens are counted per device over the last [`WINDOW_HOURS`] hours in hourly buckets, so
//! a count is exact to the hour and an entry is a few dozen bytes. Only devices whose key
//! the store knew are counted, and the map is bounded all the same: when it is full,
//! entries whose window has passed are dropped, and if that is not enough it is cleared
//! (forgetting a count only delays a warning). Time is passed in, so the rules are tested
//! without waiting hours.

use std::cell::RefCell;
use std::collections::HashMap;

/// The window over which opens are counted, as NextPush counts them.
pub const WINDOW_HOURS: usize = 12;
/// Devices counted at most.
const MAX_DEVICES: usize = 16_384;

/// Stream opens per device over the last [`WINDOW_HOURS`] hours.
#[derive(Default)]
pub struct ReconnectLog {
    devices: RefCell<HashMap<u64, Buckets>>,
}

/// Opens per hour of the window; `counts[h % WINDOW_HOURS]` is hour `h` since the epoch.
struct Buckets {
    latest_hour: u64,
    counts: [u16; WINDOW_HOURS],
}

impl Buckets {
    fn new(hour: u64) -> Buckets {
        Buckets {
            latest_hour: hour,
            counts: [0; WINDOW_HOURS],
        }
    }

    /// Clears the buckets of the hours between the latest one and `hour`.
    fn advance_to(&mut self, hour: u64) {
        if hour <= self.latest_hour {
            return;
        }
        if hour - self.latest_hour >= WINDOW_HOURS as u64 {
            self.counts = [0; WINDOW_HOURS];
        } else {
            for h in self.latest_hour + 1..=hour {
                self.counts[bucket(h)] = 0;
            }
        }
        self.latest_hour = hour;
    }

    fn total(&self) -> u32 {
        self.counts.iter().map(|&n| u32::from(n)).sum()
    }

    fn is_stale(&self, hour: u64) -> bool {
        hour.saturating_sub(self.latest_hour) >= WINDOW_HOURS as u64
    }
}

fn bucket(hour: u64) -> usize {
    (hour % WINDOW_HOURS as u64) as usize
}

impl ReconnectLog {
    /// Counts an open of `device`'s stream at `now_secs` (Unix time) and returns its opens
    /// within the window, this one included.
    pub fn record(&self, device: u64, now_secs: u64) -> u32 {
        let hour = now_secs / 3600;
        let mut devices = self.devices.borrow_mut();
        if devices.len() >= MAX_DEVICES && !devices.contains_key(&device) {
            devices.retain(|_, b| !b.is_stale(hour));
            if devices.len() >= MAX_DEVICES {
                devices.clear();
            }
        }
        let buckets = devices.entry(device).or_insert_with(|| Buckets::new(hour));
        buckets.advance_to(hour);
        let slot = &mut buckets.counts[bucket(hour)];
        *slot = slot.saturating_add(1);
        buckets.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;
    const START: u64 = 1_800_000_000;

    #[test]
    fn counts_opens_per_device_within_the_window() {
        let log = ReconnectLog::default();
        assert_eq!(log.record(1, START), 1);
        assert_eq!(log.record(1, START + 10), 2);
        assert_eq!(log.record(2, START + 20), 1);
        assert_eq!(log.record(1, START + 5 * HOUR), 3);
        assert_eq!(log.record(1, START + 11 * HOUR), 4);
    }

    #[test]
    fn opens_older_than_the_window_no_longer_count() {
        let log = ReconnectLog::default();
        let start = START - START % HOUR;
        log.record(7, start);
        log.record(7, start + 1);
        log.record(7, start + 3 * HOUR);
        assert_eq!(
            log.record(7, start + 12 * HOUR),
            2,
            "the first hour has left"
        );
        assert_eq!(log.record(7, start + 15 * HOUR), 2, "so has the fourth");
        assert_eq!(log.record(7, start + 40 * HOUR), 1, "a long gap clears all");
    }

    #[test]
    fn a_clock_that_steps_back_counts_into_the_latest_hour() {
        let log = ReconnectLog::default();
        log.record(3, START + 2 * HOUR);
        assert_eq!(log.record(3, START), 2);
    }

    #[test]
    fn a_full_map_drops_stale_devices_first() {
        let log = ReconnectLog::default();
        for device in 0..MAX_DEVICES as u64 - 1 {
            log.record(device, START);
        }
        log.record(u64::MAX, START + 20 * HOUR);
        assert_eq!(log.record(u64::MAX - 1, START + 20 * HOUR), 1);
        assert_eq!(log.devices.borrow().len(), 2, "the stale ones were dropped");
        assert_eq!(log.record(u64::MAX, START + 20 * HOUR), 2);
    }
}
