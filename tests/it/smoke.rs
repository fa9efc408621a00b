use crate::support;
use support::*;

#[test]
fn posted_message_reaches_the_subscriber() {
    let server = Server::start("smoke");
    let (key, token) = server.device("ann");
    let mut sse = server.subscribe(&key, None);
    assert_eq!(sse.status, 200);
    let r = server.post_message(&format!(
        r#"{{"token":"{token}","data":{{"b":1,"a":"x"}}}}"#
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let e = sse.next();
    assert_eq!(
        e.data,
        r#"{"data":{"b":1,"a":"x"},"registration_id":"app1"}"#
    );
}
