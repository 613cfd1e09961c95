use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "surclass", version, about = "Sealed-bid upgrade auctions")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the award plan for one lot and its bids, read from a JSON file ("-" for stdin).
    AwardFile { path: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::AwardFile { path }) => award_file(&path),
        None => ExitCode::SUCCESS,
    }
}

/// Exit status 2 for bad input, as command-line tools do for usage errors.
fn award_file(path: &str) -> ExitCode {
    let input = if path == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    let input = match input {
        Ok(text) => text,
        Err(e) => {
            eprintln!("surclass: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    match surclass::matching::file::award_json(&input) {
        Ok(plan) => {
            println!("{plan}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("surclass: {path}: {e}");
            ExitCode::from(2)
        }
    }
}
