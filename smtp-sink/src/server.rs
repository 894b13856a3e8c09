//! [`Session`] over TCP, and the maildir it files messages into.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::{DataLine, MAX_COMMAND_LINE, MAX_MESSAGE, Next, Session, envelope_headers};

/// A client silent this long is hung up on (aiosmtpd's default too).
const IDLE: Duration = Duration::from_secs(300);
/// Message lines are read in pieces of at most this many bytes, so that a
/// line without end cannot grow the buffer past it.
const PIECE: usize = 64 << 10;

/// Accepts connections on `listener` until the process ends, filing every
/// message into `maildir`.
pub async fn serve(listener: TcpListener, maildir: Maildir) -> io::Result<()> {
    let maildir = Arc::new(maildir);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors, or a client gone before it was accepted:
            // the listener itself is fine.
            Err(e) => {
                eprintln!("smtp-sink: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let maildir = Arc::clone(&maildir);
        tokio::spawn(async move {
            if let Err(e) = converse(stream, peer, &maildir).await {
                eprintln!("smtp-sink: {peer}: {e}");
            }
        });
    }
}

async fn converse(stream: TcpStream, peer: SocketAddr, maildir: &Maildir) -> io::Result<()> {
    // Replies are one write each; with Nagle's algorithm on, a reply
    // written while the previous one is unacknowledged waits for it.
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut session = Session::default();
    writer.write_all(Session::GREETING.as_bytes()).await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        let Some(read) = idle_bounded(read_piece(&mut reader, &mut line, MAX_COMMAND_LINE)).await? else {
            writer.write_all(b"421 Timeout: closing connection\r\n").await?;
            return Ok(());
        };
        if read == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") && line.len() == MAX_COMMAND_LINE {
            skip_line(&mut reader).await?;
            writer.write_all(b"500 Error: line too long\r\n").await?;
            continue;
        }
        let (reply, next) = session.command(&line);
        writer.write_all(reply.as_bytes()).await?;
        match next {
            Next::Command => {}
            Next::Close => return Ok(()),
            Next::Data => {
                let content = read_message(&mut reader).await?;
                let envelope = session.finish_message();
                let reply: &[u8] = match content {
                    Some(content) => {
                        match maildir
                            .file(envelope_headers(&peer.to_string(), &envelope).as_bytes(), &content)
                        {
                            Ok(()) => b"250 OK\r\n",
                            // A full disk, say: the client keeps the message and tries again later.
                            Err(e) => {
                                eprintln!("smtp-sink: cannot file a message from {peer}: {e}");
                                b"451 Requested action aborted: local error in processing\r\n"
                            }
                        }
                    }
                    None => b"552 Error: Too much mail data\r\n",
                };
                writer.write_all(reply).await?;
            }
        }
    }
}

/// `None` if the client said nothing for [`IDLE`].
async fn idle_bounded<T>(read: impl Future<Output = io::Result<T>>) -> io::Result<Option<T>> {
    match tokio::time::timeout(IDLE, read).await {
        Ok(read) => read.map(Some),
        Err(_) => Ok(None),
    }
}

/// Appends up to `limit` bytes, to the end of the line at most.
async fn read_piece(
    reader: &mut (impl AsyncBufRead + Unpin),
    into: &mut Vec<u8>,
    limit: usize,
) -> io::Result<usize> {
    reader.take(limit as u64).read_until(b'\n', into).await
}

async fn skip_line(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<()> {
    let mut piece = Vec::new();
    loop {
        piece.clear();
        if read_piece(reader, &mut piece, PIECE).await? == 0 || piece.ends_with(b"\n") {
            return Ok(());
        }
    }
}

/// The message after `DATA`, dot-unstuffed, line ends as sent, without
/// the closing `.` line; `None` if it was larger than [`MAX_MESSAGE`]
/// (read to its end all the same, to stay in step with the client).
async fn read_message(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<Option<Vec<u8>>> {
    let mut content = Some(Vec::new());
    let mut piece = Vec::new();
    let mut at_line_start = true;
    loop {
        piece.clear();
        let read = idle_bounded(read_piece(reader, &mut piece, PIECE)).await?;
        match read {
            None => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle in the middle of a message")),
            Some(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Some(_) => {}
        }
        let text = if at_line_start {
            match Session::message_line(&piece) {
                DataLine::End => return Ok(content),
                DataLine::Content(text) => text,
            }
        } else {
            &piece[..]
        };
        at_line_start = piece.ends_with(b"\n");
        if let Some(kept) = &mut content {
            if kept.len() + text.len() > MAX_MESSAGE {
                content = None;
            } else {
                kept.extend_from_slice(text);
            }
        }
    }
}

/// A maildir: each message written whole into `tmp/`, then renamed into
/// `new/`, so that readers never see half a message.
pub struct Maildir {
    root: PathBuf,
    /// Unique names: the time, this process and a count (the convention's
    /// `time.Ppid_Qcount.host`).
    sequence: AtomicU64,
    host: String,
}

impl Maildir {
    /// Makes its `tmp`, `new` and `cur` if missing. Opened before the
    /// listener is bound: whoever waits for the port finds the folders.
    pub fn open(root: &Path) -> io::Result<Self> {
        for folder in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(root.join(folder))?;
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().replace(['/', ':'], "_"))
            .unwrap_or_else(|_| "localhost".into());
        Ok(Self { root: root.to_owned(), sequence: AtomicU64::new(0), host })
    }

    /// Filing a message is this server's whole work, on a local disk: it is
    /// done in place rather than handed to another thread and waited for.
    fn file(&self, envelope: &[u8], content: &[u8]) -> io::Result<()> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let count = self.sequence.fetch_add(1, Ordering::Relaxed);
        let name = format!("{nanos}.P{}Q{count}.{}", std::process::id(), self.host);
        let partial = self.root.join("tmp").join(&name);
        std::fs::write(&partial, [envelope, content].concat())?;
        std::fs::rename(&partial, self.root.join("new").join(&name))
    }
}
