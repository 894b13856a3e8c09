//! The sink over real TCP, as a client sees it.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

struct Client {
    replies: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(maildir: &Path) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let maildir = smtp_sink::Maildir::open(maildir).unwrap();
        tokio::spawn(smtp_sink::serve(listener, maildir));
        let (reader, writer) = TcpStream::connect(address).await.unwrap().into_split();
        let mut client = Self { replies: BufReader::new(reader), writer };
        assert_eq!(client.reply().await, "220");
        client
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// The code of the next reply, its continuation lines read too.
    async fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.replies.read_line(&mut line).await.unwrap();
            assert!(line.ends_with("\r\n"), "a reply line ends with CRLF: {line:?}");
            if line.as_bytes()[3] == b' ' {
                return line[..3].to_owned();
            }
        }
    }

    async fn replies(&mut self, count: usize) -> Vec<String> {
        let mut codes = Vec::new();
        for _ in 0..count {
            codes.push(self.reply().await);
        }
        codes
    }
}

fn fresh_maildir(name: &str) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("smtp-sink-{name}-{}-{nanos}", std::process::id()))
}

fn filed(maildir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<_> =
        std::fs::read_dir(maildir.join("new")).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert_eq!(std::fs::read_dir(maildir.join("tmp")).unwrap().count(), 0, "nothing left half-written");
    names.iter().map(|path| std::fs::read(path).unwrap()).collect()
}

#[tokio::test]
async fn pipelined_messages_are_filed_byte_for_byte_with_their_envelope() {
    let maildir = fresh_maildir("verbatim");
    let mut client = Client::connect(&maildir).await;
    let peer = client.writer.local_addr().unwrap();
    // Sent in one write, as a pipelining client would.
    client
        .send(
            b"EHLO test\r\nMAIL FROM:<tickets@stampede.example>\r\nRCPT TO:<ada@example.com>\r\nDATA\r\n\
              Subject: one\r\n\r\n..starts with a dot\r\nlast line\r\n.\r\n\
              MAIL FROM:<tickets@stampede.example>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: two\r\n\r\nbody\n.\r\n\
              QUIT\r\n",
        )
        .await;
    assert_eq!(
        client.replies(10).await,
        ["250", "250", "250", "354", "250", "250", "250", "354", "250", "221"]
    );
    let mail = filed(&maildir);
    assert_eq!(mail.len(), 2);
    let first = format!(
        "X-Peer: {peer}\r\nX-MailFrom: tickets@stampede.example\r\nX-RcptTo: ada@example.com\r\n\
         Subject: one\r\n\r\n.starts with a dot\r\nlast line\r\n"
    );
    assert_eq!(String::from_utf8_lossy(&mail[0]), first);
    assert!(mail[1].ends_with(b"X-RcptTo: bob@example.com\r\nSubject: two\r\n\r\nbody\n"));
    std::fs::remove_dir_all(&maildir).unwrap();
}

#[tokio::test]
async fn a_message_cut_off_mid_data_is_not_filed() {
    let maildir = fresh_maildir("cut");
    let mut client = Client::connect(&maildir).await;
    client.send(b"HELO test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: half\r\n").await;
    assert_eq!(client.replies(4).await, ["250", "250", "250", "354"]);
    drop(client);
    // Loopback delivers the close at once; the server reads it within
    // microseconds of that.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(filed(&maildir).is_empty());
    std::fs::remove_dir_all(&maildir).unwrap();
}

#[tokio::test]
async fn oversized_lines_and_messages_are_refused_and_the_connection_goes_on() {
    let maildir = fresh_maildir("oversized");
    let mut client = Client::connect(&maildir).await;
    let long_command = format!("HELO {}\r\n", "x".repeat(5000));
    client.send(long_command.as_bytes()).await;
    assert_eq!(client.reply().await, "500");
    client.send(b"HELO test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n").await;
    assert_eq!(client.replies(4).await, ["250", "250", "250", "354"]);
    // One line longer than the whole message may be, without a line end
    // until its last byte.
    let huge = vec![b'y'; smtp_sink::MAX_MESSAGE + 10];
    client.send(&huge).await;
    client.send(b"\r\n.\r\n").await;
    assert_eq!(client.reply().await, "552");
    client.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nsmall\r\n.\r\n").await;
    assert_eq!(client.replies(4).await, ["250", "250", "354", "250"]);
    let mail = filed(&maildir);
    assert_eq!(mail.len(), 1, "only the small message is filed");
    assert!(mail[0].ends_with(b"\r\nsmall\r\n"));
    std::fs::remove_dir_all(&maildir).unwrap();
}

#[tokio::test]
async fn a_message_that_cannot_be_filed_is_refused_for_now_and_the_next_one_is_filed() {
    let maildir = fresh_maildir("unfiled");
    let mut client = Client::connect(&maildir).await;
    // Where messages are written first goes missing, as on a disk gone bad.
    std::fs::remove_dir(maildir.join("tmp")).unwrap();
    client.send(b"HELO test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nfirst\r\n.\r\n").await;
    assert_eq!(client.replies(5).await, ["250", "250", "250", "354", "451"]);
    std::fs::create_dir(maildir.join("tmp")).unwrap();
    client.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nsecond\r\n.\r\n").await;
    assert_eq!(client.replies(4).await, ["250", "250", "354", "250"]);
    let mail = filed(&maildir);
    assert_eq!(mail.len(), 1);
    assert!(mail[0].ends_with(b"\r\nsecond\r\n"));
    std::fs::remove_dir_all(&maildir).unwrap();
}
