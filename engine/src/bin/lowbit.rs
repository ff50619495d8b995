//! `lowbit` command-line tool. JSON on stdout, errors on stderr with a non-zero exit.

use std::process::ExitCode;

use lowbit::{bench, gpu::Gpu, selftest, Error, Result};

const USAGE: &str = "lowbit bench kernels [--json] [--reps N]
lowbit selftest [--json]";

fn flag_value(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn run(args: &[String]) -> Result<()> {
    let json = args.iter().any(|a| a == "--json");
    match args.first().map(String::as_str) {
        Some("bench") if args.get(1).map(String::as_str) == Some("kernels") => {
            let reps = match flag_value(args, "--reps") {
                Some(v) => v.parse().map_err(|_| Error::Usage(format!("--reps {v}: not a number")))?,
                None => 30,
            };
            let gpu = pollster::block_on(Gpu::new())?;
            let report = pollster::block_on(bench::run(&gpu, &bench::BENCH_SHAPES, reps))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).map_err(|e| Error::Io(e.to_string()))?);
            } else {
                print!("{}", report.table());
            }
            Ok(())
        }
        Some("selftest") => {
            let gpu = pollster::block_on(Gpu::new())?;
            let cases = selftest::standard_cases(gpu.info.subgroups);
            let rows = pollster::block_on(selftest::run_cases(&gpu, &cases, 1))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| Error::Io(e.to_string()))?);
            } else {
                eprintln!("adapter: {} ({})", gpu.info.name, gpu.info.backend);
                print!("{}", selftest::table(&rows));
            }
            if rows.iter().all(|r| r.pass) {
                Ok(())
            } else {
                Err(Error::Gpu("self-test failed".into()))
            }
        }
        _ => Err(Error::Usage(USAGE.into())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lowbit: {e}");
            ExitCode::FAILURE
        }
    }
}
