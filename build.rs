// `sqlx::migrate!` embeds `migrations/` when the crate compiles, and cargo
// does not watch that directory by itself: without this, a new migration
// would be missing from an incremental build (never from a fresh one).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
