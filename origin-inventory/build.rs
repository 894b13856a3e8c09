// `sqlx::migrate!` embeds the migrations when the crate compiles; without
// this, an edited migration leaves a binary with the old one, and a
// database migrated by another build refuses it ("previously applied but
// has been modified").
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
