//! One socket used from several threads at once: the socket's state lock under contention.
//!
//! Every `send` and `recv` takes the socket's state lock (a spin lock that yields, see
//! `omq_sockets::core`). Here tasks on both workers of a multi-thread runtime send into one
//! socket, or send and receive on one socket, at the same time: nothing may be lost, reordered
//! per sender, or left waiting.

use std::sync::Arc;
use std::time::Duration;

use omq_tokio::{Message, Options, Socket, SocketType};

const PER_SENDER: u32 = 20_000;
const DEADLINE: Duration = Duration::from_secs(60);

fn opts() -> Options {
    let mut o = Options::default();
    o.linger = Some(Duration::ZERO);
    o
}

fn tagged(sender: u8, seq: u32) -> Message {
    let mut body = vec![sender];
    body.extend_from_slice(&seq.to_be_bytes());
    Message::from(body)
}

fn untag(m: &Message) -> (u8, u32) {
    let f = m.first().expect("a frame").as_slice();
    (f[0], u32::from_be_bytes(f[1..5].try_into().expect("tag")))
}

/// Four tasks send into one PUSH; the PULL gets every message, in order per sender.
async fn many_senders_one_socket(bind: &str) {
    let pull = Socket::new(SocketType::Pull, opts()).unwrap();
    let ep = pull.bind(bind).await.unwrap().to_string();
    let push = Arc::new(Socket::new(SocketType::Push, opts()).unwrap());
    push.connect(&ep).await.unwrap();
    let senders: Vec<_> = (0..4u8)
        .map(|id| {
            let push = Arc::clone(&push);
            tokio::spawn(async move {
                for seq in 0..PER_SENDER {
                    push.send(tagged(id, seq)).await.unwrap();
                }
            })
        })
        .collect();
    tokio::time::timeout(DEADLINE, async {
        let mut next = [0u32; 4];
        for _ in 0..4 * PER_SENDER {
            let (id, seq) = untag(&pull.recv().await.unwrap());
            assert_eq!(seq, next[usize::from(id)], "order of sender {id}");
            next[usize::from(id)] += 1;
        }
    })
    .await
    .expect("every message within the deadline");
    for s in senders {
        s.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_senders_one_socket_inproc() {
    many_senders_one_socket("inproc://threads-many-senders").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_senders_one_socket_tcp() {
    many_senders_one_socket("tcp://127.0.0.1:*").await;
}

/// One DEALER sends from one task and receives on another (whose receive spins, taking the lock
/// on every look) while a second DEALER echoes (a DEALER waits at the high-water mark, where a
/// ROUTER would drop): every reply arrives, in order.
async fn send_and_recv_on_two_tasks(bind: &str) {
    let echoer = Socket::new(SocketType::Dealer, opts()).unwrap();
    let ep = echoer.bind(bind).await.unwrap().to_string();
    let dealer = Arc::new(Socket::new(SocketType::Dealer, opts()).unwrap());
    dealer.connect(&ep).await.unwrap();
    let echo = tokio::spawn(async move {
        for _ in 0..PER_SENDER {
            let m = echoer.recv().await.unwrap();
            echoer.send(m).await.unwrap();
        }
        echoer
    });
    let sender = {
        let dealer = Arc::clone(&dealer);
        tokio::spawn(async move {
            for seq in 0..PER_SENDER {
                dealer.send(tagged(0, seq)).await.unwrap();
            }
        })
    };
    tokio::time::timeout(DEADLINE, async {
        for expected in 0..PER_SENDER {
            let (_, seq) = untag(&dealer.recv().await.unwrap());
            assert_eq!(seq, expected, "reply order");
        }
    })
    .await
    .expect("every reply within the deadline");
    sender.await.unwrap();
    drop(echo.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_recv_on_two_tasks_inproc() {
    send_and_recv_on_two_tasks("inproc://threads-send-recv").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_recv_on_two_tasks_tcp() {
    send_and_recv_on_two_tasks("tcp://127.0.0.1:*").await;
}
