//! `smtp-sink <address:port> <maildir>`: see the library's documentation.

use std::path::PathBuf;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(folder), None) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: smtp-sink <address:port> <maildir>");
    };
    let maildir = smtp_sink::Maildir::open(&PathBuf::from(&folder))?;
    let listener = tokio::net::TcpListener::bind(&address).await?;
    eprintln!("smtp-sink: listening on {}, filing into {folder}", listener.local_addr()?);
    smtp_sink::serve(listener, maildir).await?;
    Ok(())
}
