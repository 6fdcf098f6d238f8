//! Lists the schema migrations for `Migrator` (`src/migration.rs`): every `m*.rs` file of
//! `src/migration/`, in name order, which is the order of their dates. A migration is applied once
//! and never edited, so the directory is the history, as sqlx's `migrate!` and refinery's
//! `embed_migrations!` read theirs; adding a migration is adding its file.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("src/migration");
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut names: Vec<String> = fs::read_dir(&dir)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.retain(|name| name.starts_with('m') && name.ends_with(".rs"));
    names.sort();

    let mut modules = String::new();
    let mut list = String::new();
    for file in &names {
        let module = file.trim_end_matches(".rs");
        let path = dir.join(file);
        modules.push_str(&format!("#[path = {:?}]\nmod {module};\n", path.display().to_string()));
        list.push_str(&format!("        Box::new({module}::Migration),\n"));
    }
    let code = format!(
        "{modules}\n/// Every migration, oldest first.\nfn all() -> Vec<Box<dyn MigrationTrait>> {{\n    vec![\n{list}    ]\n}}\n"
    );
    fs::write(PathBuf::from(env::var("OUT_DIR")?).join("migrations.rs"), code)?;
    Ok(())
}
