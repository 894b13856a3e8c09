//! The order path's warm connections (`src/warm.rs`): taken back without
//! the pool's round trips while just answered, and only then.

use std::time::Duration;

use origin_inventory::warm::{WARM_FOR, WarmPool};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::{TestApp, spawn_app};

/// A pool of `size` of its own on a test database (with the origin that
/// made it): the origin's own workers share `app.db`, so its counts would
/// move under the test.
async fn own_pool(size: u32) -> (TestApp, PgPool) {
    let app = spawn_app().await;
    let pool = PgPoolOptions::new().max_connections(size).connect(&app.database_url).await.unwrap();
    (app, pool)
}

/// A warm pool over a pool of four of its own, its first connection
/// answered and kept: with that connection's backend.
async fn answered_once(warm_for: Duration) -> (TestApp, PgPool, WarmPool, i32) {
    let (app, pool) = own_pool(4).await;
    let warm = WarmPool::warm_for(pool.clone(), warm_for);
    let first = backend(&warm).await.unwrap();
    (app, pool, warm, first)
}

/// The Postgres backend serving the next warm connection.
async fn backend(warm: &WarmPool) -> Result<i32, sqlx::Error> {
    let mut connection = warm.acquire().await.unwrap();
    let pid = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *connection).await;
    connection.keep_if_answered(&pid);
    pid
}

/// The next warm connection answers, from another backend than `dead`.
async fn assert_replaced(warm: &WarmPool, dead: i32) {
    assert_ne!(backend(warm).await.unwrap(), dead);
}

async fn terminate(pool: &PgPool, pid: i32) {
    let mut other = pool.acquire().await.unwrap();
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(&mut *other)
        .await
        .unwrap();
    assert!(ended);
}

#[tokio::test]
async fn a_connection_just_answered_is_taken_back_without_the_pools_checks() {
    // Warm for longer than the test takes: what matters is what happens within.
    let (_app, pool, warm, first) = answered_once(Duration::from_secs(60)).await;
    // Kept aside, not in the pool.
    assert_eq!((pool.size(), pool.num_idle()), (1, 0));
    assert_eq!(backend(&warm).await.unwrap(), first, "the same connection, straight back");

    // Ended behind the origin's back while warm: no check finds out,
    // so its next statement fails, and that connection is not kept.
    terminate(&pool, first).await;
    let lost = backend(&warm).await;
    assert!(lost.is_err(), "taken back unchecked: {lost:?}");
    assert_replaced(&warm, first).await;
}

#[tokio::test]
async fn a_connection_kept_longer_is_checked_and_replaced_if_it_died() {
    let (_app, pool, warm, first) = answered_once(WARM_FOR).await;
    terminate(&pool, first).await;
    // What a restart of Postgres does: by the time it serves again, every
    // kept connection has cooled, and the pool's check replaces it.
    tokio::time::sleep(WARM_FOR).await;
    assert_replaced(&warm, first).await;
}

#[tokio::test]
async fn a_refusal_raised_by_the_statement_keeps_the_connection() {
    let (_app, _pool, warm, first) = answered_once(WARM_FOR).await;
    let mut connection = warm.acquire().await.unwrap();
    let refused = sqlx::query("DO $$ BEGIN RAISE EXCEPTION 'sold out' USING ERRCODE = 'SH003'; END $$")
        .execute(&mut *connection)
        .await;
    assert!(matches!(&refused, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("SH003")));
    connection.keep_if_answered(&refused);
    assert_eq!(backend(&warm).await.unwrap(), first);
}

#[tokio::test]
async fn at_most_half_the_pool_is_kept_and_all_of_it_goes_back_when_quiet() {
    let (_app, pool) = own_pool(4).await;
    let warm = WarmPool::new(pool.clone());
    let mut taken = Vec::new();
    for _ in 0..4 {
        taken.push(warm.acquire().await.unwrap());
    }
    for mut connection in taken {
        let answered = sqlx::query("SELECT 1").execute(&mut *connection).await;
        connection.keep_if_answered(&answered);
    }
    // Two kept; two back in the pool once it has checked them.
    let back = tokio::time::timeout(Duration::from_secs(5), async {
        while pool.num_idle() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    back.await.expect("the connections beyond half went back to the pool");
    assert_eq!((pool.size(), pool.num_idle()), (4, 2));

    // Nothing asks for them: once cooled, they go back by themselves.
    let quiet = tokio::time::timeout(Duration::from_secs(5), async {
        while pool.num_idle() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    quiet.await.expect("the kept connections went back once cooled");
    tokio::time::timeout(Duration::from_secs(5), pool.close()).await.expect("closed with nothing held aside");
}

#[tokio::test]
async fn a_pool_of_one_keeps_nothing_aside() {
    let (_app, pool) = own_pool(1).await;
    let warm = WarmPool::new(pool.clone());
    backend(&warm).await.unwrap();
    // Back in the pool (once checked) for whoever asks next.
    let mut other =
        tokio::time::timeout(WARM_FOR / 2, pool.acquire()).await.expect("the pool's one connection").unwrap();
    sqlx::query("SELECT 1").execute(&mut *other).await.unwrap();
}
