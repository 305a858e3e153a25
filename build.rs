//! Generates the parser from `grammar/vi.lalrpop` into `OUT_DIR`.
fn main() {
    println!("cargo:rerun-if-changed=grammar/vi.lalrpop");
    lalrpop::Configuration::new()
        .set_in_dir("grammar")
        .set_out_dir(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .emit_rerun_directives(true)
        .process()
        .expect("grammar/vi.lalrpop must generate a parser");
}
