//! `upstash-gateway`: `STAMPEDE_REDIS_URL` (default `redis://127.0.0.1:6379`),
//! `STAMPEDE_UPSTASH_TOKEN` (required), `STAMPEDE_UPSTASH_LISTEN`
//! (default `127.0.0.1:8079`).

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().json().flatten_event(true).init();
    let redis = std::env::var("STAMPEDE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let token = std::env::var("STAMPEDE_UPSTASH_TOKEN").context("STAMPEDE_UPSTASH_TOKEN must be set")?;
    let listen = std::env::var("STAMPEDE_UPSTASH_LISTEN").unwrap_or_else(|_| "127.0.0.1:8079".into());
    let gateway = upstash_gateway::Gateway::connect(&redis, &token)
        .await
        .with_context(|| format!("cannot reach {redis}"))?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, "upstash gateway listening");
    axum::serve(listener, gateway.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
