//! Readers for list files given by the caller as any [`std::io::Read`]:
//!
//! - **OpenSanctions "simple" CSV** (`targets.simple.csv`): a header row naming the columns
//!   (`id,schema,name,aliases,birth_date,countries,addresses,identifiers,sanctions,phones,
//!   emails,dataset,first_seen,last_seen,last_change`, newer exports add columns such as
//!   `program_ids`; columns are found by name), multiple values separated by `;`. Only rows
//!   with `schema` `Person` are kept; the others are counted as skipped.
//! - **OFAC `sdn.csv`**: no header; columns `ent_num, SDN_Name, SDN_Type, Program, Title,
//!   Call_Sign, Vess_type, Tonnage, GRT, Vess_flag, Vess_owner, Remarks`, `-0-` meaning empty,
//!   names written `LAST, First`. Only `individual` rows are kept. Birth dates (`DOB 12 Jan
//!   1960`, `DOB Jan 1960`, `DOB circa 1960`, `DOB 1960 to 1962`), nationalities and
//!   citizenships (`nationality Iran`) and quoted aliases (`a.k.a. 'NAME'`) are read from
//!   Remarks.
//!
//! Text that is not UTF-8 is read as Latin-1. Errors name the line.

use std::borrow::Cow;
use std::io::Read;

use super::countries::country_code;
use super::{EntryKind, ListEntry};

/// A list file that cannot be read, with the line where it went wrong (0: before any line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: u64,
    pub message: String,
}

impl ParseError {
    fn new(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }

    fn csv(err: &csv::Error) -> Self {
        let line = err.position().map_or(0, csv::Position::line);
        Self::new(line, err.to_string())
    }
}

string_enum! {
    /// The formats `idshare lists import --format` reads.
    pub enum ListFormat ("list format", all: slice) {
        OpensanctionsCsv = "opensanctions-csv",
        OfacSdnCsv = "ofac-sdn-csv",
    }
}

/// A whole list file read: the kept entries and how many rows were skipped (not persons).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub entries: Vec<ListEntry>,
    pub skipped: u64,
}

#[derive(Debug, Clone, Copy)]
struct OpenSanctionsColumns {
    id: usize,
    schema: usize,
    name: usize,
    aliases: Option<usize>,
    birth_date: Option<usize>,
    countries: Option<usize>,
    sanctions: Option<usize>,
    dataset: Option<usize>,
    topics: Option<usize>,
    program_ids: Option<usize>,
}

/// Reads a list file entry by entry: an iterator over `Result<ListEntry, ParseError>`, so an
/// importer can show progress ([`ListReader::bytes_read`] against the file's size) and decide
/// what to do with bad rows. After an I/O error it ends.
#[derive(Debug)]
pub struct ListReader<R> {
    format: ListFormat,
    list: String,
    csv: csv::Reader<R>,
    columns: Option<OpenSanctionsColumns>,
    record: csv::ByteRecord,
    skipped: u64,
    done: bool,
}

/// Starts reading a list file of `format` into the list named `list` (reads the header of an
/// OpenSanctions file at once).
pub fn read_list<R: Read>(
    format: ListFormat,
    reader: R,
    list: &str,
) -> Result<ListReader<R>, ParseError> {
    let list = list.trim();
    if list.is_empty() {
        return Err(ParseError::new(0, "the list name must not be empty"));
    }
    let csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut reader = ListReader {
        format,
        list: list.to_owned(),
        csv,
        columns: None,
        record: csv::ByteRecord::new(),
        skipped: 0,
        done: false,
    };
    if format == ListFormat::OpensanctionsCsv {
        reader.columns = Some(reader.read_header()?);
    }
    Ok(reader)
}

/// Reads a whole OpenSanctions "simple" CSV file; the first bad row is an error.
pub fn parse_opensanctions_csv(reader: impl Read, list: &str) -> Result<Parsed, ParseError> {
    parse_list(ListFormat::OpensanctionsCsv, reader, list)
}

/// Reads a whole OFAC `sdn.csv` file; the first bad row is an error.
pub fn parse_ofac_sdn_csv(reader: impl Read, list: &str) -> Result<Parsed, ParseError> {
    parse_list(ListFormat::OfacSdnCsv, reader, list)
}

/// Reads a whole list file of `format`; the first bad row is an error.
pub fn parse_list(format: ListFormat, reader: impl Read, list: &str) -> Result<Parsed, ParseError> {
    let mut rows = read_list(format, reader, list)?;
    let entries = rows.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok(Parsed {
        entries,
        skipped: rows.skipped(),
    })
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

fn multi(value: &str) -> Vec<String> {
    value
        .split(';')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

impl<R: Read> ListReader<R> {
    /// The format being read.
    pub fn format(&self) -> ListFormat {
        self.format
    }

    /// Rows skipped so far because they are not persons.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Bytes consumed so far (for a progress bar against the file size).
    pub fn bytes_read(&self) -> u64 {
        self.csv.position().byte()
    }

    fn line(&self) -> u64 {
        self.record.position().map_or(0, csv::Position::line)
    }

    fn read_header(&mut self) -> Result<OpenSanctionsColumns, ParseError> {
        match self.csv.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return Err(ParseError::new(1, "empty file: expected a header row")),
            Err(e) => return Err(ParseError::csv(&e)),
        }
        let names: Vec<String> = self
            .record
            .iter()
            .map(|f| {
                text(f)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_ascii_lowercase()
            })
            .collect();
        let find = |n: &str| names.iter().position(|c| c == n);
        let required = |n: &str| {
            find(n).ok_or_else(|| {
                ParseError::new(
                    1,
                    format!(
                        "not an OpenSanctions simple CSV header: no `{n}` column (found: {})",
                        names.join(",")
                    ),
                )
            })
        };
        Ok(OpenSanctionsColumns {
            id: required("id")?,
            schema: required("schema")?,
            name: required("name")?,
            aliases: find("aliases"),
            birth_date: find("birth_date"),
            countries: find("countries"),
            sanctions: find("sanctions"),
            dataset: find("dataset"),
            topics: find("topics"),
            program_ids: find("program_ids"),
        })
    }

    fn field(&self, index: usize) -> Cow<'_, str> {
        self.record.get(index).map_or(Cow::Borrowed(""), text)
    }

    fn opt_field(&self, index: Option<usize>) -> Cow<'_, str> {
        index.map_or(Cow::Borrowed(""), |i| self.field(i))
    }

    /// `Ok(None)`: a row to skip.
    fn opensanctions_row(&self, c: &OpenSanctionsColumns) -> Result<Option<ListEntry>, ParseError> {
        let line = self.line();
        let width = [c.id, c.schema, c.name].into_iter().max().unwrap_or(0) + 1;
        if self.record.len() < width {
            return Err(ParseError::new(
                line,
                format!(
                    "expected at least {width} columns, found {}",
                    self.record.len()
                ),
            ));
        }
        if self.field(c.schema).trim() != "Person" {
            return Ok(None);
        }
        let id = self.field(c.id).trim().to_owned();
        if id.is_empty() {
            return Err(ParseError::new(line, "empty `id`"));
        }
        let name = self.field(c.name).trim().to_owned();
        if name.is_empty() {
            return Err(ParseError::new(
                line,
                format!("person {id} has an empty `name`"),
            ));
        }
        let sanctions = multi(&self.opt_field(c.sanctions));
        let datasets = multi(&self.opt_field(c.dataset));
        let topics = multi(&self.opt_field(c.topics));
        let mentions_pep = |v: &String| {
            let v = v.to_ascii_lowercase();
            v.contains("pep") || v.contains("politic")
        };
        let kind = if topics
            .iter()
            .any(|t| t == "sanction" || t.starts_with("sanction."))
        {
            EntryKind::Sanction
        } else if topics.iter().any(|t| t == "role.pep" || t == "role.rca") {
            EntryKind::Pep
        } else if !topics.is_empty() {
            EntryKind::Other
        } else if !sanctions.is_empty() {
            EntryKind::Sanction
        } else if datasets.iter().any(mentions_pep) || mentions_pep(&self.list) {
            EntryKind::Pep
        } else {
            EntryKind::Other
        };
        let mut programs = sanctions;
        programs.extend(multi(&self.opt_field(c.program_ids)));
        programs.extend(datasets);
        let mut entry = ListEntry::new(id, self.list.clone(), kind, name);
        entry.aliases = multi(&self.opt_field(c.aliases));
        entry.birthdates = multi(&self.opt_field(c.birth_date));
        entry.countries = multi(&self.opt_field(c.countries));
        entry.programs = programs;
        Ok(Some(entry.normalized()))
    }

    /// `Ok(None)`: a row to skip.
    fn ofac_row(&self) -> Result<Option<ListEntry>, ParseError> {
        let line = self.line();
        let value = |i: usize| {
            let v = self.field(i);
            let t = v.trim();
            if t == "-0-" {
                String::new()
            } else {
                t.to_owned()
            }
        };
        if self.record.len() == 1 && matches!(value(0).as_str(), "" | "\u{1a}") {
            // Blank line, or the end-of-file marker older sdn.csv files carry.
            return Ok(None);
        }
        if self.record.len() < 12 {
            return Err(ParseError::new(
                line,
                format!("expected 12 columns, found {}", self.record.len()),
            ));
        }
        let ent_num = value(0);
        if ent_num.is_empty() {
            return Err(ParseError::new(line, "empty `ent_num`"));
        }
        if !value(2).eq_ignore_ascii_case("individual") {
            return Ok(None);
        }
        let raw_name = value(1);
        if raw_name.is_empty() {
            return Err(ParseError::new(
                line,
                format!("entry {ent_num} has an empty name"),
            ));
        }
        let mut entry = ListEntry::new(
            ent_num,
            self.list.clone(),
            EntryKind::Sanction,
            ofac_name(&raw_name),
        );
        entry.programs = value(3)
            .split("] [")
            .map(|p| p.trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace()))
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let remarks = parse_ofac_remarks(&value(11));
        entry.aliases = remarks.aliases;
        entry.birthdates = remarks.birthdates;
        entry.countries = remarks.countries;
        Ok(Some(entry.normalized()))
    }
}

impl<R: Read> Iterator for ListReader<R> {
    type Item = Result<ListEntry, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.csv.read_byte_record(&mut self.record) {
                Ok(false) => self.done = true,
                Err(e) => {
                    if e.is_io_error() {
                        self.done = true;
                    }
                    return Some(Err(ParseError::csv(&e)));
                }
                Ok(true) => {
                    let row = match self.columns {
                        Some(c) => self.opensanctions_row(&c),
                        None => self.ofac_row(),
                    };
                    match row {
                        Ok(Some(entry)) => return Some(Ok(entry)),
                        Ok(None) => self.skipped += 1,
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
        }
        None
    }
}

/// "PUTIN, Vladimir Vladimirovich" → "Vladimir Vladimirovich PUTIN".
fn ofac_name(raw: &str) -> String {
    match raw.split_once(',') {
        Some((last, first)) if !first.trim().is_empty() && !last.trim().is_empty() => {
            format!("{} {}", first.trim(), last.trim())
        }
        _ => raw.trim().trim_matches(',').trim().to_owned(),
    }
}

#[derive(Debug, Default, PartialEq)]
struct Remarks {
    aliases: Vec<String>,
    birthdates: Vec<String>,
    countries: Vec<String>,
}

fn parse_ofac_remarks(remarks: &str) -> Remarks {
    let mut out = Remarks::default();
    for part in remarks.split(';') {
        let part = part.trim().trim_end_matches('.').trim();
        let lower = part.to_ascii_lowercase();
        let body = lower.strip_prefix("alt. ").unwrap_or(&lower);
        let offset = lower.len() - body.len();
        if let Some(date) = body.strip_prefix("dob ") {
            out.birthdates.extend(parse_ofac_dates(date));
        } else if let Some(country) = body
            .strip_prefix("nationality ")
            .or_else(|| body.strip_prefix("citizen "))
        {
            let name = &part[part.len() - country.len()..];
            if let Some(code) = country_code(name) {
                out.countries.push(code.to_owned());
            }
        } else if body.starts_with("a.k.a.") {
            let raw = &part[offset + "a.k.a.".len()..];
            let alias = raw.trim().trim_matches(|c| c == '\'' || c == '"').trim();
            if !alias.is_empty() {
                out.aliases.push(ofac_name(alias));
            }
        }
    }
    out
}

fn month(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let prefix = name.get(..3)?.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == prefix)
        .map(|i| i as u32 + 1)
}

fn year(s: &str) -> Option<i32> {
    (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// One OFAC date: "12 Jan 1960" → 1960-01-12, "Jan 1960" → 1960-01, "1960" → 1960.
fn parse_ofac_date(s: &str) -> Option<String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.as_slice() {
        [d, m, y] => {
            let (d, m, y) = (d.parse::<u32>().ok()?, month(m)?, year(y)?);
            (1..=31)
                .contains(&d)
                .then(|| format!("{y:04}-{m:02}-{d:02}"))
        }
        [m, y] => Some(format!("{:04}-{:02}", year(y)?, month(m)?)),
        [y] => Some(format!("{:04}", year(y)?)),
        _ => None,
    }
}

/// An OFAC DOB value: one date, "circa" a date, or a range "1960 to 1962" (years in between
/// included, at most 10).
fn parse_ofac_dates(s: &str) -> Vec<String> {
    let s = s.trim();
    let s = s.strip_prefix("circa ").unwrap_or(s);
    if let Some((from, to)) = s.split_once(" to ") {
        let (from, to) = (parse_ofac_date(from), parse_ofac_date(to));
        if let (Some(a), Some(b)) = (&from, &to)
            && let (Some(ya), Some(yb)) = (year(&a[..4]), year(&b[..4]))
            && a.len() == 4
            && b.len() == 4
            && ya <= yb
            && yb - ya <= 10
        {
            return (ya..=yb).map(|y| format!("{y:04}")).collect();
        }
        return from.into_iter().chain(to).collect();
    }
    parse_ofac_date(s).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENSANCTIONS: &str = "\u{feff}id,schema,name,aliases,birth_date,countries,addresses,identifiers,sanctions,phones,emails,dataset,first_seen,last_seen,last_change
NK-abc,Person,Ivan Petrovich SIDOROV,Иван Сидоров;I. Sidorov,1961-03-04;1961,ru;ua,,,EU Financial Sanctions,,,EU FSF,2020-01-01,2024-01-01,2024-01-01
NK-org,Organization,Acme Trading LLC,,,,,,OFAC SDN,,,US OFAC,2020-01-01,2024-01-01,2024-01-01
Q42,Person,Jane Example,,1970,gb,,,,,,Every Politician (PEP),2020-01-01,2024-01-01,2024-01-01
";

    #[test]
    fn reads_opensanctions_persons_and_skips_others() {
        let parsed = parse_opensanctions_csv(OPENSANCTIONS.as_bytes(), "opensanctions").unwrap();
        assert_eq!(parsed.skipped, 1);
        assert_eq!(parsed.entries.len(), 2);
        let ivan = &parsed.entries[0];
        assert_eq!(ivan.entity_id, "NK-abc");
        assert_eq!(ivan.list, "opensanctions");
        assert_eq!(ivan.kind, EntryKind::Sanction);
        assert_eq!(ivan.name, "Ivan Petrovich SIDOROV");
        assert_eq!(ivan.aliases, ["Иван Сидоров", "I. Sidorov"]);
        assert_eq!(ivan.birthdates, ["1961-03-04", "1961"]);
        assert_eq!(ivan.countries, ["RU", "UA"]);
        assert_eq!(ivan.programs, ["EU Financial Sanctions", "EU FSF"]);
        assert_eq!(parsed.entries[1].kind, EntryKind::Pep);
    }

    #[test]
    fn opensanctions_errors_name_the_line() {
        let no_header = "name,foo\nx,y\n";
        let err = parse_opensanctions_csv(no_header.as_bytes(), "l").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("`id`"), "{err}");

        let empty_name = "id,schema,name\na,Person,Alice\nb,Person,\n";
        let err = parse_opensanctions_csv(empty_name.as_bytes(), "l").unwrap_err();
        assert_eq!(err.to_string(), "line 3: person b has an empty `name`");

        let short = "id,schema,name\na,Person\n";
        assert_eq!(
            parse_opensanctions_csv(short.as_bytes(), "l")
                .unwrap_err()
                .line,
            2
        );

        assert_eq!(parse_opensanctions_csv(&b""[..], "l").unwrap_err().line, 1);
        assert_eq!(
            parse_opensanctions_csv(&b"id"[..], " ").unwrap_err().line,
            0
        );
    }

    #[test]
    fn iterator_reports_progress_and_continues_after_bad_rows() {
        let data = "id,schema,name\na,Person,Alice\nb,Person,\nc,Person,Carol\n";
        let mut rows = read_list(ListFormat::OpensanctionsCsv, data.as_bytes(), "l").unwrap();
        assert!(rows.next().unwrap().is_ok());
        assert!(rows.bytes_read() > 15);
        assert!(rows.next().unwrap().is_err());
        assert_eq!(rows.next().unwrap().unwrap().name, "Carol");
        assert!(rows.next().is_none());
        assert_eq!(rows.bytes_read(), data.len() as u64);
    }

    const SDN: &str = r#"36,"AEROCARIBBEAN AIRLINES",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,"Havana, Cuba."
173,"ABU NIDAL ORGANIZATION",-0- ,"SDT] [FTO] [SDGT",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,"a.k.a. 'ANO'."
2674,"SAADI, Mohammed Hassan",individual,"SDGT] [IRGC",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,"DOB 12 Jan 1960; alt. DOB circa 1962; POB Baghdad, Iraq; nationality Iraq; alt. nationality Iran; a.k.a. 'AL-SAADI, Muhammad'."
9001,"KIM, Jong",individual,"DPRK3",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,"DOB 1950 to 1952; citizen Korea, North."
9002,"PERSON WITHOUT COMMA",individual,"X",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0-
9003,"VESSEL ONE",vessel,"X",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0-
"#;

    #[test]
    fn reads_ofac_individuals_with_remarks() {
        let input = format!("{SDN}\u{1a}\n");
        let parsed = parse_ofac_sdn_csv(input.as_bytes(), "ofac").unwrap();
        assert_eq!(parsed.skipped, 4);
        let names: Vec<&str> = parsed.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["Mohammed Hassan SAADI", "Jong KIM", "PERSON WITHOUT COMMA"]
        );
        let saadi = &parsed.entries[0];
        assert_eq!(saadi.entity_id, "2674");
        assert_eq!(saadi.kind, EntryKind::Sanction);
        assert_eq!(saadi.programs, ["SDGT", "IRGC"]);
        assert_eq!(saadi.birthdates, ["1960-01-12", "1962"]);
        assert_eq!(saadi.countries, ["IQ", "IR"]);
        assert_eq!(saadi.aliases, ["Muhammad AL-SAADI"]);
        let kim = &parsed.entries[1];
        assert_eq!(kim.birthdates, ["1950", "1951", "1952"]);
        assert_eq!(kim.countries, ["KP"]);
        assert!(parsed.entries[2].birthdates.is_empty());
    }

    #[test]
    fn ofac_errors_name_the_line_and_latin1_is_read() {
        let bad = "1,\"A, B\",individual,\"X\"\n";
        let err = parse_ofac_sdn_csv(bad.as_bytes(), "ofac").unwrap_err();
        assert_eq!(err.to_string(), "line 1: expected 12 columns, found 4");

        let latin1: &[u8] =
            b"7,\"N\xdc\xd1EZ, Jos\xe9\",individual,\"X\",-0-,-0-,-0-,-0-,-0-,-0-,-0-,-0-\n";
        let parsed = parse_ofac_sdn_csv(latin1, "ofac").unwrap();
        assert_eq!(parsed.entries[0].name, "José NÜÑEZ");
    }

    #[test]
    fn ofac_dates() {
        assert_eq!(parse_ofac_dates("12 Jan 1960"), ["1960-01-12"]);
        assert_eq!(parse_ofac_dates("Feb 1971"), ["1971-02"]);
        assert_eq!(parse_ofac_dates("circa 1945"), ["1945"]);
        assert_eq!(parse_ofac_dates("1960 to 1961"), ["1960", "1961"]);
        assert_eq!(
            parse_ofac_dates("01 Jan 1960 to 31 Dec 1960"),
            ["1960-01-01", "1960-12-31"]
        );
        assert!(parse_ofac_dates("unknown").is_empty());
        assert!(parse_ofac_dates("40 Jan 1960").is_empty());
    }

    #[test]
    fn formats_parse_from_their_cli_names() {
        assert_eq!(
            "ofac-sdn-csv".parse::<ListFormat>(),
            Ok(ListFormat::OfacSdnCsv)
        );
        assert!("xml".parse::<ListFormat>().is_err());
    }
}
