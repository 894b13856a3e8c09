//! What the migrations leave behind, taken together.

use crate::helpers::spawn_app;

/// Every `SET name = value` a migration gives a function, in an
/// `ALTER FUNCTION` or a `CREATE [OR REPLACE] FUNCTION` header, as
/// (function, "name=value").
fn function_settings(migration: &str) -> Vec<(String, String)> {
    let mut settings = Vec::new();
    for after in migration.split("FUNCTION ").skip(1) {
        let Some((name, rest)) = after.split_once('(') else { continue };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        // The header: up to the body or the end of the statement.
        let header = rest.split(['$', ';']).next().unwrap_or_default();
        let words: Vec<&str> = header.split_whitespace().collect();
        for window in words.windows(4) {
            if let ["SET", setting, "=", value] = window {
                settings.push((name.to_owned(), format!("{setting}={value}")));
            }
        }
    }
    settings
}

#[test]
fn function_settings_are_read_from_both_kinds_of_statement() {
    let migration =
        "ALTER FUNCTION a(bigint[], double precision)\n    SET plan_cache_mode = force_generic_plan;
        CREATE OR REPLACE FUNCTION b(p int) RETURNS int LANGUAGE plpgsql SET work_mem = 64kB AS $$
        BEGIN UPDATE t SET x = 1; END $$;
        CREATE TRIGGER t AFTER UPDATE ON t EXECUTE FUNCTION c();
        UPDATE t SET y = 2;";
    let expected = [("a", "plan_cache_mode=force_generic_plan"), ("b", "work_mem=64kB")];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(f, s)| (f.to_string(), s.to_string())).collect();
    assert_eq!(function_settings(migration), expected);
}

/// A later `CREATE OR REPLACE FUNCTION` resets the settings its text does
/// not repeat (0020 lost `outbox_record_all`'s plan cache mode that way).
#[tokio::test]
async fn every_setting_a_migration_gives_a_function_survives_the_later_ones() {
    let app = spawn_app().await;
    // The migrations as the origin embeds and runs them.
    let declared: Vec<_> = sqlx::migrate!("./migrations")
        .iter()
        .flat_map(|migration| function_settings(&migration.sql))
        .collect();
    assert!(declared.len() >= 3, "the plan cache modes of 0014 and 0015 at least: {declared:?}");
    for (function, setting) in declared {
        let configs: Vec<Option<Vec<String>>> =
            sqlx::query_scalar("SELECT proconfig FROM pg_proc WHERE proname = $1")
                .bind(&function)
                .fetch_all(&app.db)
                .await
                .unwrap();
        assert!(
            configs.iter().flatten().any(|config| config.contains(&setting)),
            "{function} lost {setting}: {configs:?}"
        );
    }
}

/// The sandbox's ledger in a database of its own is made by the origin
/// (`payments::open_ledger`), not by the migrations: it must be the
/// migrated table all the same, columns, constraints and persistence.
#[tokio::test]
async fn the_sandbox_ledger_of_its_own_database_is_the_migrated_table() {
    let app = spawn_app().await;
    let shape = |db: sqlx::PgPool| async move {
        let columns: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text
             FROM information_schema.columns WHERE table_name = 'sandbox_charges' ORDER BY ordinal_position",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let mut constraints: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'sandbox_charges'::regclass",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        constraints.sort();
        let persistence: String = sqlx::query_scalar(
            "SELECT relpersistence::text FROM pg_class WHERE oid = 'sandbox_charges'::regclass",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        (columns, constraints, persistence)
    };
    let migrated = shape(app.db.clone()).await;
    assert_eq!(migrated.0.len(), 9, "{migrated:?}");
    assert_eq!(migrated.2, "u", "unlogged");
    assert_eq!(shape(app.ledger.clone()).await, migrated);
}
