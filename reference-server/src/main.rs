fn main() {
    eprintln!("reference-server is not built yet");
    std::process::exit(2);
}
