//! `partner-center`: the all-in-one dev server and operator CLI (the library holds the program).

fn main() -> std::process::ExitCode {
    partner_center::main()
}
