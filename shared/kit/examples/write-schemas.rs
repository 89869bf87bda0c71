//! Writes the JSON Schemas of the event contracts to `shared/kit/schemas/`.
//! Run with `make schemas` after changing a type in `kit::events`.

use std::{fs, path::PathBuf};

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
    fs::create_dir_all(&dir)?;
    for (file, schema) in kit::events::schemas() {
        let text = serde_json::to_string_pretty(&schema.to_value())?;
        fs::write(dir.join(&file), text + "\n")?;
    }
    Ok(())
}
