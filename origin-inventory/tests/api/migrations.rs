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
