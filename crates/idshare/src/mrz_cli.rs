//! `idshare mrz check LINE1 LINE2 [LINE3]`: parses a machine-readable zone and prints its
//! fields, every check digit and the form of every field as JSON, for an operator investigating
//! a result by hand.

use std::process::ExitCode;

use idshare_domain::mrz;
use serde_json::Value;
use time::OffsetDateTime;

/// Parses the MRZ given as its lines (one argument per line, or one argument holding the lines
/// separated by newlines) and prints the result as pretty JSON on stdout.
///
/// Exit code 0 when every check digit holds and every field has its ICAO 9303 form, 1 when a
/// check digit or a field fails, 2 when the text is not an MRZ (the reason goes to stderr).
pub fn run(lines: &[String]) -> ExitCode {
    let lines: Vec<&str> = lines
        .iter()
        .flat_map(|arg| arg.lines())
        .filter(|line| !line.trim().is_empty())
        .collect();
    // Two-digit birth years are resolved against today.
    let today = OffsetDateTime::now_utc().date();
    let parsed = match mrz::parse(&lines, today) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("error: not a valid MRZ: {err}");
            return ExitCode::from(2);
        }
    };
    let valid = parsed.is_valid();
    let mut json = match serde_json::to_value(&parsed) {
        Ok(json) => json,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Value::Object(map) = &mut json {
        map.insert(
            "issuing-country".into(),
            mrz::alpha3_to_alpha2(&parsed.issuing_state).map_or(Value::Null, Value::from),
        );
        map.insert("visa".into(), parsed.is_visa().into());
        map.insert(
            "all-check-digits-valid".into(),
            parsed.all_check_digits_valid().into(),
        );
        map.insert("all-fields-valid".into(), parsed.all_fields_valid().into());
        map.insert("valid".into(), valid.into());
    }
    match serde_json::to_string_pretty(&json) {
        Ok(text) => println!("{text}"),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
