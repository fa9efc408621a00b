//! Store records: bytes that decode are exactly the bytes their record encodes to, so a
//! damaged record is refused rather than half read.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openpush::store::{AppRecord, ClientRecord, MessageRecord, ScheduledRecord, UserRecord};

fuzz_target!(|data: &[u8]| {
    UserRecord::decode(data).inspect(|r| assert_eq!(r.encode(), data));
    ClientRecord::decode(data).inspect(|r| assert_eq!(r.encode(), data));
    AppRecord::decode(data).inspect(|r| assert_eq!(r.encode(), data));
    MessageRecord::decode(data).inspect(|r| assert_eq!(r.encode(), data));
    ScheduledRecord::decode(data).inspect(|r| assert_eq!(r.encode(), data));
});
