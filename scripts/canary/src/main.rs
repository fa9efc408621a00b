//! Cross-build canary: proves that timers fire, loopback TCP works, the OS
//! random source answers and redb commits on the target, then prints
//! `OK <arch>`. A hang here (killed by the caller's timeout) means async-io's
//! timerfd was armed with a mis-sized `timespec` (see docs in cross-build.sh).
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use redb::ReadableDatabase;

const TABLE: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("canary");

fn main() {
    let ex = async_executor::LocalExecutor::new();
    futures_lite::future::block_on(ex.run(async {
        let start = Instant::now();
        for tick in 1..=3 {
            Timer::after(Duration::from_millis(200)).await;
            println!("tick {tick} at {} ms", start.elapsed().as_millis());
        }
        assert!(start.elapsed() >= Duration::from_millis(600), "timer fired early");

        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind loopback");
        let addr = listener.get_ref().local_addr().expect("local addr");
        let client = ex.spawn(async move {
            let mut s = Async::<TcpStream>::connect(addr).await.expect("connect");
            futures_lite::AsyncWriteExt::write_all(&mut s, b"ping").await.expect("write");
        });
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 4];
        futures_lite::AsyncReadExt::read_exact(&mut conn, &mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");
        client.await;
        println!("loopback ok");
    }));

    let mut seed = [0u8; 16];
    getrandom::fill(&mut seed).expect("getrandom");
    println!("random ok");

    let path = std::env::temp_dir().join(format!("openpush-canary-{}.redb", std::process::id()));
    {
        let db = redb::Database::create(&path).expect("create db");
        let tx = db.begin_write().expect("begin write");
        tx.open_table(TABLE).expect("open table").insert("k", 42).expect("insert");
        tx.commit().expect("commit");
        let rx = db.begin_read().expect("begin read");
        let v = rx.open_table(TABLE).expect("open table").get("k").expect("get").map(|g| g.value());
        assert_eq!(v, Some(42));
    }
    std::fs::remove_file(&path).ok();
    println!("redb ok");

    let _ = std::io::stdout().flush();
    println!("OK {}", std::env::consts::ARCH);
}
