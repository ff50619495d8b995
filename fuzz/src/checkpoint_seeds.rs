//! Writes the `checkpoint` target's seed corpus: each file of the base checkpoint behind the byte
//! that picks it, into corpus/checkpoint/.

mod checkpoint_base;

fn main() {
    let files = checkpoint_base::base();
    let dir = std::path::Path::new("corpus/checkpoint");
    std::fs::create_dir_all(dir).unwrap();
    for (i, name) in checkpoint_base::TARGETS.iter().enumerate() {
        let mut seed = vec![i as u8];
        seed.extend(&files[*name]);
        std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
    }
    println!("{} seeds in {}", checkpoint_base::TARGETS.len(), dir.display());
}
