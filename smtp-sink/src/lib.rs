//! The local SMTP server of the stack, its tests and its bench: it accepts
//! every message and files it into a maildir as received.
//!
//! It replaced Python's aiosmtpd, which spent about 1.4 ms of CPU per
//! confirmation email on the same two cores the origin and Postgres share:
//! more than the origin spends on the whole order. A real relay runs on
//! another machine; a local one should cost next to nothing.
//!
//! [`Session`] is the protocol (RFC 5321's commands, replies and order),
//! with no I/O; [`serve`] runs it over TCP and files each message.

mod server;

pub use server::{Maildir, serve};

/// Longest command line, its CRLF included (RFC 5321 §4.5.3.1.4: 512;
/// extensions add to it).
pub const MAX_COMMAND_LINE: usize = 1000;
/// Largest message accepted, as advertised by `SIZE`.
pub const MAX_MESSAGE: usize = 32 << 20;

/// What the connection does after a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Read the next command.
    Command,
    /// Read the message's lines up to the lone `.` ([`Session::message_line`]).
    Data,
    /// Close the connection.
    Close,
}

/// The sender and recipients of the message under way.
#[derive(Debug, Default)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
}

/// One connection's state.
#[derive(Debug, Default)]
pub struct Session {
    greeted: bool,
    envelope: Option<Envelope>,
}

/// What a message line means while reading `DATA`.
#[derive(Debug, PartialEq, Eq)]
pub enum DataLine<'a> {
    /// Content, dot-unstuffed, its line end kept.
    Content(&'a [u8]),
    /// The lone `.` that ends the message.
    End,
}

impl Session {
    /// The server's first words.
    pub const GREETING: &'static str = "220 localhost smtp-sink ESMTP ready\r\n";

    /// Answers one command line (with or without its line end).
    pub fn command(&mut self, line: &[u8]) -> (String, Next) {
        let line = String::from_utf8_lossy(trim_line_end(line));
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb, argument.trim()),
            None => (line.as_ref(), ""),
        };
        let reply = |text: &str| (format!("{text}\r\n"), Next::Command);
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if argument.is_empty() => reply("501 Syntax: EHLO hostname"),
            "EHLO" => {
                self.greeted = true;
                self.envelope = None;
                let text = format!("250-localhost\r\n250-SIZE {MAX_MESSAGE}\r\n250-8BITMIME\r\n250 SMTPUTF8");
                reply(&text)
            }
            "HELO" => {
                self.greeted = true;
                self.envelope = None;
                reply("250 localhost")
            }
            "MAIL" if !self.greeted => reply("503 Error: send HELO first"),
            "MAIL" if self.envelope.is_some() => reply("503 Error: nested MAIL command"),
            "MAIL" => match address(argument, "FROM:") {
                Some(from) => {
                    self.envelope = Some(Envelope { mail_from: from, rcpt_tos: Vec::new() });
                    reply("250 OK")
                }
                None => reply("501 Syntax: MAIL FROM:<address>"),
            },
            "RCPT" => match (&mut self.envelope, address(argument, "TO:")) {
                (None, _) => reply("503 Error: need MAIL command"),
                (Some(envelope), Some(to)) if !to.is_empty() => {
                    envelope.rcpt_tos.push(to);
                    reply("250 OK")
                }
                (Some(_), _) => reply("501 Syntax: RCPT TO:<address>"),
            },
            "DATA" => match &self.envelope {
                Some(envelope) if !envelope.rcpt_tos.is_empty() => {
                    ("354 End data with <CR><LF>.<CR><LF>\r\n".into(), Next::Data)
                }
                _ => reply("503 Error: need RCPT command"),
            },
            "RSET" => {
                self.envelope = None;
                reply("250 OK")
            }
            "NOOP" => reply("250 OK"),
            "VRFY" => reply("252 Cannot VRFY user, but will accept message and attempt delivery"),
            "QUIT" => ("221 Bye\r\n".into(), Next::Close),
            _ => reply("500 Error: command not recognized"),
        }
    }

    /// Reads one line of the message under `DATA`.
    pub fn message_line(line: &[u8]) -> DataLine<'_> {
        match trim_line_end(line) {
            b"." => DataLine::End,
            // Dot-stuffing (RFC 5321 §4.5.2): a leading dot was doubled.
            _ if line.starts_with(b".") => DataLine::Content(&line[1..]),
            _ => DataLine::Content(line),
        }
    }

    /// Ends the message under way (read, or refused as too large): the
    /// next one starts with `MAIL` again. Returns its envelope.
    pub fn finish_message(&mut self) -> Envelope {
        self.envelope.take().unwrap_or_default()
    }
}

/// The envelope lines filed before a message, the headers aiosmtpd's
/// `Mailbox` adds: the connection (here `address:port`), the sender, the
/// recipients.
pub fn envelope_headers(peer: &str, envelope: &Envelope) -> String {
    format!(
        "X-Peer: {peer}\r\nX-MailFrom: {}\r\nX-RcptTo: {}\r\n",
        envelope.mail_from,
        envelope.rcpt_tos.join(", ")
    )
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The address of `FROM:<a@b> PARAMS` (`prefix` "FROM:"), without its
/// brackets; parameters such as `BODY=8BITMIME` are accepted and ignored.
/// `<>` (a bounce's null sender) is the empty address.
fn address(argument: &str, prefix: &str) -> Option<String> {
    let head = argument.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let (address, _parameters) = inner.split_once('>')?;
    Some(address.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(session: &mut Session, line: &str) -> (String, Next) {
        let (reply, next) = session.command(line.as_bytes());
        (reply[..3].to_owned(), next)
    }

    #[test]
    fn a_message_is_taken_in_the_order_of_the_rfc() {
        let mut session = Session::default();
        let (ehlo, _) = session.command(b"EHLO client.example\r\n");
        assert!(ehlo.starts_with("250-localhost\r\n") && ehlo.ends_with("250 SMTPUTF8\r\n"), "{ehlo}");
        assert_eq!(code(&mut session, "MAIL FROM:<tickets@stampede.example> BODY=8BITMIME\r\n").0, "250");
        assert_eq!(code(&mut session, "rcpt to:<ada@example.com>\r\n").0, "250");
        assert_eq!(code(&mut session, "RCPT TO: <bob@example.com>").0, "250");
        assert_eq!(code(&mut session, "DATA\r\n"), ("354".into(), Next::Data));
        let envelope = session.finish_message();
        assert_eq!(envelope.mail_from, "tickets@stampede.example");
        assert_eq!(envelope.rcpt_tos, ["ada@example.com", "bob@example.com"]);
        // The next message starts afresh on the same connection.
        assert_eq!(code(&mut session, "DATA\r\n").0, "503");
        assert_eq!(code(&mut session, "MAIL FROM:<>\r\n").0, "250");
        assert_eq!(session.finish_message().mail_from, "");
        assert_eq!(code(&mut session, "QUIT\r\n"), ("221".into(), Next::Close));
    }

    #[test]
    fn commands_out_of_order_or_malformed_are_refused_and_change_nothing() {
        let mut session = Session::default();
        assert_eq!(code(&mut session, "MAIL FROM:<a@b>").0, "503", "before HELO");
        assert_eq!(code(&mut session, "EHLO").0, "501", "without a name");
        assert_eq!(code(&mut session, "HELO client").0, "250");
        assert_eq!(code(&mut session, "RCPT TO:<a@b>").0, "503", "before MAIL");
        assert_eq!(code(&mut session, "MAIL TO:<a@b>").0, "501");
        assert_eq!(code(&mut session, "MAIL FROM:a@b").0, "501", "without brackets");
        assert_eq!(code(&mut session, "MAIL FROM:<a@b>").0, "250");
        assert_eq!(code(&mut session, "MAIL FROM:<c@d>").0, "503", "nested");
        assert_eq!(code(&mut session, "DATA").0, "503", "before RCPT");
        assert_eq!(code(&mut session, "RCPT TO:<>").0, "501", "no recipient");
        assert_eq!(code(&mut session, "EXPN list").0, "500");
        assert_eq!(code(&mut session, "NOOP").0, "250");
        assert_eq!(code(&mut session, "RSET").0, "250");
        assert_eq!(code(&mut session, "RCPT TO:<a@b>").0, "503", "RSET ended the message");
    }

    #[test]
    fn message_lines_are_dot_unstuffed_and_end_at_a_lone_dot() {
        assert_eq!(Session::message_line(b".\r\n"), DataLine::End);
        assert_eq!(Session::message_line(b".\n"), DataLine::End);
        assert_eq!(Session::message_line(b"..leading dot\r\n"), DataLine::Content(b".leading dot\r\n"));
        assert_eq!(Session::message_line(b"plain\r\n"), DataLine::Content(b"plain\r\n"));
        assert_eq!(Session::message_line(b". \r\n"), DataLine::Content(b" \r\n"));
    }

    #[test]
    fn the_envelope_is_filed_as_headers_naming_the_connection_sender_and_recipients() {
        let envelope = Envelope { mail_from: "a@b".into(), rcpt_tos: vec!["c@d".into(), "e@f".into()] };
        assert_eq!(
            envelope_headers("127.0.0.1:4000", &envelope),
            "X-Peer: 127.0.0.1:4000\r\nX-MailFrom: a@b\r\nX-RcptTo: c@d, e@f\r\n"
        );
    }
}
