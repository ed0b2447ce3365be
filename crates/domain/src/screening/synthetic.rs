//! Deterministic generated persons for the shipped sample lists, the quality tests and the
//! benchmark: realistic multi-token names built from per-culture first-name and syllable
//! tables, birthdates and countries, and spelling variants of names (typos, token order,
//! accents, middle initials, transliteration, Cyrillic script).
//!
//! Everything is driven by [`Rng`], a SplitMix64 generator, so a seed always gives the same
//! data on every platform and toolchain. None of the names is a real listed person.

use std::collections::HashSet;

use super::normalize::normalize_name;
use super::{EntryKind, ListEntry};

/// SplitMix64: tiny, fast, and stable forever (the shipped lists depend on it).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Debug, Clone, Copy)]
struct Culture {
    weight: usize,
    male: &'static [&'static str],
    female: &'static [&'static str],
    stems: &'static [&'static str],
    endings: &'static [&'static str],
    countries: &'static [&'static str],
}

const SLAVIC: Culture = Culture {
    weight: 22,
    male: &[
        "Ivan",
        "Sergei",
        "Dmitri",
        "Alexei",
        "Nikolai",
        "Mikhail",
        "Andrei",
        "Vladimir",
        "Yuri",
        "Oleg",
        "Pavel",
        "Igor",
        "Viktor",
        "Boris",
        "Anatoly",
        "Gennady",
        "Konstantin",
        "Roman",
        "Maksim",
        "Artem",
        "Denis",
        "Yevgeny",
        "Grigory",
        "Stanislav",
        "Vadim",
        "Bogdan",
        "Taras",
        "Miroslav",
        "Leonid",
        "Arkady",
    ],
    female: &[
        "Olga",
        "Natalia",
        "Elena",
        "Tatiana",
        "Irina",
        "Svetlana",
        "Anna",
        "Maria",
        "Yulia",
        "Ekaterina",
        "Ludmila",
        "Galina",
        "Oksana",
        "Daria",
        "Ksenia",
        "Vera",
        "Nadezhda",
        "Larisa",
        "Polina",
        "Valentina",
    ],
    stems: &[
        "Petr", "Sidor", "Kuzn", "Volk", "Sokol", "Lebed", "Koval", "Morozh", "Belous", "Gromy",
        "Zhuk", "Kras", "Orl", "Timoshch", "Bondar", "Shevch", "Melnik", "Tkach", "Karp", "Zaits",
        "Vorob", "Kozl", "Medved", "Golub", "Zolot", "Serebr", "Chern", "Bel", "Rudn", "Dobr",
        "Yakovl", "Makar", "Filipp", "Grish", "Nikit", "Lavr", "Tarasov", "Krylov", "Ostap",
        "Savch", "Pavlyuch", "Kravch", "Levch", "Myk", "Stepan", "Zakhar", "Prokh", "Rom", "Solov",
    ],
    endings: &[
        "ov", "ev", "in", "enko", "sky", "chuk", "ko", "yuk", "ich", "anov", "ykin",
    ],
    countries: &["RU", "UA", "BY", "KZ", "RS", "MD"],
};

const ARABIC: Culture = Culture {
    weight: 22,
    male: &[
        "Mohammed", "Ahmed", "Ali", "Omar", "Khalid", "Yusuf", "Hassan", "Hussein", "Ibrahim",
        "Abdullah", "Mahmoud", "Mustafa", "Karim", "Tariq", "Samir", "Walid", "Faisal", "Hamza",
        "Bilal", "Nasser", "Jamal", "Rashid", "Said", "Zaid", "Anwar", "Majid", "Adel", "Fouad",
        "Ismail", "Sulaiman",
    ],
    female: &[
        "Fatima", "Aisha", "Maryam", "Layla", "Noor", "Huda", "Amina", "Salma", "Zainab", "Rania",
        "Samira", "Yasmin", "Khadija", "Hanan", "Dalia",
    ],
    stems: &[
        "Rash", "Hash", "Qaht", "Zub", "Ham", "Tam", "Shar", "Kub", "Dos", "Maj", "Jab", "Nab",
        "Far", "Sal", "Bak", "Had", "Mans", "Zah", "Nuq", "Hak", "Ansar", "Baghd", "Tikr", "Dur",
        "Ghaz", "Khaz", "Mutair", "Otaib", "Qur", "Shammar", "Sudair", "Thaq", "Zahr", "Jubur",
        "Azz", "Bur", "Dajan", "Fadl", "Halab", "Jaza",
    ],
    endings: &[
        "id", "imi", "ani", "ari", "awi", "ouri", "eh", "i", "ud", "ir", "aji", "abi",
    ],
    countries: &["SY", "IQ", "YE", "LB", "SA", "AE", "LY", "EG", "SD", "JO"],
};

const HISPANIC: Culture = Culture {
    weight: 16,
    male: &[
        "José",
        "Juan",
        "Carlos",
        "Luis",
        "Jorge",
        "Miguel",
        "Francisco",
        "Antonio",
        "Alejandro",
        "Fernando",
        "Ricardo",
        "Andrés",
        "Raúl",
        "Héctor",
        "Ramón",
        "Joaquín",
        "Diego",
        "Pablo",
        "Sergio",
        "Manuel",
    ],
    female: &[
        "María",
        "Sofía",
        "Lucía",
        "Carmen",
        "Isabel",
        "Ana",
        "Gabriela",
        "Valentina",
        "Inés",
        "Paula",
        "Elena",
        "Beatriz",
        "Rosa",
        "Marta",
    ],
    stems: &[
        "Hern", "Rodr", "Gonz", "Fern", "Mart", "Sanch", "Ram", "Torr", "Flor", "Riv", "Gom",
        "Diaz", "Mor", "Jim", "Ruiz", "Alv", "Cast", "Vargas", "Rom", "Mend", "Guerr", "Ortiz",
        "Delg", "Aguil", "Nav", "Med", "Cab", "Sol", "Quint", "Villan", "Escob", "Bust", "Oroz",
        "Zamor", "Ibarr", "Salaz",
    ],
    endings: &[
        "ández", "íguez", "ález", "ínez", "ez", "es", "ado", "eda", "era", "ino", "ón", "illo",
        "ales", "ira", "ano",
    ],
    countries: &["VE", "CO", "MX", "CU", "NI", "ES", "PE", "PA"],
};

const WESTERN: Culture = Culture {
    weight: 18,
    male: &[
        "John",
        "Michael",
        "David",
        "James",
        "Robert",
        "William",
        "Thomas",
        "Peter",
        "Paul",
        "Mark",
        "Hans",
        "Jürgen",
        "Klaus",
        "Pierre",
        "François",
        "Jean",
        "Marco",
        "Giovanni",
        "Luca",
        "Lars",
        "Sven",
        "Erik",
        "Jan",
        "Pieter",
        "Matteo",
        "Stefan",
        "Henrik",
        "Patrick",
    ],
    female: &[
        "Anna",
        "Sarah",
        "Emma",
        "Laura",
        "Julia",
        "Claire",
        "Sophie",
        "Ingrid",
        "Astrid",
        "Chiara",
        "Margaret",
        "Helen",
        "Charlotte",
        "Élise",
    ],
    stems: &[
        "Ander", "Peter", "Schmi", "Wag", "Hoff", "Brad", "Whit", "Black", "Green", "Hart",
        "Fisch", "Becker", "Wolf", "Dubo", "Lef", "Mor", "Bern", "Ross", "Ferr", "Colom", "Brun",
        "Bianch", "Lind", "Berg", "Holm", "Dahl", "Van Dijk", "De Vr", "Jans", "Kemp", "Ash",
        "Thorn", "Ell", "Hast", "Mull", "Gall", "Rich", "Carr", "Stan", "Crow",
    ],
    endings: &[
        "son", "sen", "er", "mann", "ard", "ier", "ton", "ley", "ini", "elli", "berg", "stein",
        "ford", "well", "ault", "ström", "hoff",
    ],
    countries: &["GB", "US", "DE", "FR", "IT", "NL", "SE", "CH", "CY", "BE"],
};

const TURKIC_PERSIAN: Culture = Culture {
    weight: 12,
    male: &[
        "Mehmet", "Mustafa", "Emre", "Burak", "Reza", "Hossein", "Ali", "Farhad", "Dariush",
        "Mehdi", "Kemal", "Murat", "Saeed", "Javad", "Amir", "Orhan",
    ],
    female: &[
        "Zeynep", "Elif", "Leyla", "Shirin", "Parisa", "Ayşe", "Maryam", "Nasrin", "Emine",
        "Golnar",
    ],
    stems: &[
        "Yıld", "Kaya", "Demir", "Çel", "Şah", "Akt", "Özt", "Ars", "Kar", "Tehr", "Rezai",
        "Hosseini", "Moham", "Ahmad", "Rahim", "Kazem", "Jafar", "Sadegh", "Nour", "Abbas",
        "Esfand", "Bagher", "Golest", "Sorkh",
    ],
    endings: &[
        "oglu", "oğlu", "zadeh", "i", "ian", "pour", "lu", "er", "han", "nejad", "dar",
    ],
    countries: &["TR", "IR", "AF", "AZ", "TM"],
};

const EAST_ASIAN: Culture = Culture {
    weight: 10,
    male: &[
        "Wei", "Jun", "Hao", "Yong", "Qiang", "Tao", "Bo", "Jin", "Feng", "Chen", "Min", "Sung",
        "Jae", "Duc", "Minh",
    ],
    female: &[
        "Mei", "Lan", "Ying", "Hua", "Li", "Xiu", "Yan", "Ji", "Hye", "Linh", "Thu",
    ],
    stems: &[
        "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun",
        "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Kim", "Park", "Choi", "Jung", "Kang", "Nguyen",
        "Tran", "Pham", "Hoang", "Song", "Han", "Ri",
    ],
    endings: &[""],
    countries: &["CN", "KP", "HK", "KR", "VN", "MM"],
};

const CULTURES: [Culture; 6] = [
    SLAVIC,
    ARABIC,
    HISPANIC,
    WESTERN,
    TURKIC_PERSIAN,
    EAST_ASIAN,
];

const GIVEN_SYLLABLES: &[&str] = &[
    "xiao", "ming", "wei", "jun", "hua", "li", "jie", "hong", "yong", "feng", "lan", "mei", "ying",
    "hao", "yu", "chen", "bo", "tao", "jin", "qiang", "zhi", "guo", "dong", "ping",
];

fn pick_culture(rng: &mut Rng) -> usize {
    let total: usize = CULTURES.iter().map(|c| c.weight).sum();
    let mut r = rng.below(total);
    for (i, c) in CULTURES.iter().enumerate() {
        if r < c.weight {
            return i;
        }
        r -= c.weight;
    }
    0
}

fn surname(rng: &mut Rng, ci: usize, female: bool) -> String {
    let culture = &CULTURES[ci];
    let mut s = (*rng.pick(culture.stems)).to_owned();
    if culture.endings != [""] {
        if rng.chance(0.3) {
            // A second stem makes the space of surnames large (hundreds of thousands).
            let extra = rng.pick(culture.stems).to_lowercase().replace(' ', "");
            let cut = extra.len().min(3);
            let cut = (1..=cut)
                .rev()
                .find(|&c| extra.is_char_boundary(c))
                .unwrap_or(1);
            s.push_str(&extra[..cut]);
            s.push(*rng.pick(&['a', 'e', 'i', 'o', 'u']));
        }
        let ending = *rng.pick(culture.endings);
        s.push_str(ending);
        if female && ci == 0 {
            if s.ends_with("sky") {
                s.truncate(s.len() - 1);
                s.push_str("aya");
            } else if s.ends_with("ov") || s.ends_with("ev") || s.ends_with("in") {
                s.push('a');
            }
        }
    }
    s
}

/// A surname that is deterministic in `i` (for tests that need many distinct surnames).
pub fn surname_for(i: u64) -> String {
    let mut rng = Rng::new(i.wrapping_mul(7919).wrapping_add(17));
    let ci = pick_culture(&mut rng);
    surname(&mut rng, ci, false)
}

fn person(rng: &mut Rng) -> (String, usize) {
    let ci = pick_culture(rng);
    let c = CULTURES[ci];
    let female = rng.chance(0.35);
    let first = *rng.pick(if female { c.female } else { c.male });
    let mut parts: Vec<String> = Vec::new();
    match ci {
        0 => {
            parts.push(first.to_owned());
            if rng.chance(0.5) {
                let father = rng.pick(c.male).trim_end_matches(['a', 'i', 'y', 'o', 'e']);
                parts.push(format!("{father}{}", if female { "ovna" } else { "ovich" }));
            }
            parts.push(surname(rng, ci, female));
        }
        1 => {
            parts.push(first.to_owned());
            if rng.chance(0.35) {
                parts.push(if female { "bint" } else { "bin" }.to_owned());
                parts.push((*rng.pick(c.male)).to_owned());
            }
            let family = surname(rng, ci, female);
            if rng.chance(0.6) {
                parts.push(format!("al-{family}"));
            } else {
                parts.push(family);
            }
        }
        2 => {
            parts.push(first.to_owned());
            if rng.chance(0.2) {
                parts.push((*rng.pick(if female { c.female } else { c.male })).to_owned());
            }
            parts.push(surname(rng, ci, female));
            if rng.chance(0.6) {
                parts.push(surname(rng, ci, female));
            }
        }
        5 => {
            let given = if rng.chance(0.7) {
                let a = rng.pick(GIVEN_SYLLABLES);
                let b = rng.pick(GIVEN_SYLLABLES);
                let mut g = format!("{a}{b}");
                g[..1].make_ascii_uppercase();
                g
            } else {
                first.to_owned()
            };
            let family = (*rng.pick(c.stems)).to_owned();
            if rng.chance(0.5) {
                parts.push(family);
                parts.push(given);
            } else {
                parts.push(given);
                parts.push(family);
            }
        }
        _ => {
            parts.push(first.to_owned());
            if rng.chance(0.3) {
                parts.push((*rng.pick(if female { c.female } else { c.male })).to_owned());
            }
            parts.push(surname(rng, ci, female));
        }
    }
    (parts.join(" "), ci)
}

/// A random person's full name from the generator's tables (may coincide with a listed one:
/// callers that need a non-listed name check).
pub fn random_person_name(rng: &mut Rng) -> String {
    person(rng).0
}

fn birthdate(rng: &mut Rng) -> String {
    let year = 1940 + rng.below(66);
    let month = 1 + rng.below(12);
    let day = 1 + rng.below(28);
    match rng.below(10) {
        0 => format!("{year:04}"),
        1 => format!("{year:04}-{month:02}"),
        _ => format!("{year:04}-{month:02}-{day:02}"),
    }
}

/// `count` distinct generated persons (distinct normalized primary names) of `kind` in `list`,
/// with ids `{id_prefix}-{n:06}` (n from 1). About 85 % have a birthdate (some only a year or
/// month, a few two), most one country (some two), a quarter an alias (a transliteration,
/// the Cyrillic spelling of a Slavic name, or a shortened form).
pub fn generate_entries(
    rng: &mut Rng,
    count: usize,
    list: &str,
    kind: EntryKind,
    id_prefix: &str,
) -> Vec<ListEntry> {
    let mut seen = HashSet::with_capacity(count);
    let mut entries = Vec::with_capacity(count);
    while entries.len() < count {
        let (name, ci) = person(rng);
        if !seen.insert(normalize_name(&name)) {
            continue;
        }
        let culture = CULTURES[ci];
        let mut entry = ListEntry::new(
            format!("{id_prefix}-{:06}", entries.len() + 1),
            list,
            kind,
            name.clone(),
        );
        if rng.chance(0.85) {
            entry.birthdates.push(birthdate(rng));
            if rng.chance(0.1) {
                entry.birthdates.push(birthdate(rng));
            }
        }
        entry
            .countries
            .push((*rng.pick(culture.countries)).to_owned());
        if rng.chance(0.15) {
            entry
                .countries
                .push((*rng.pick(culture.countries)).to_owned());
        }
        if rng.chance(0.25) {
            let alias = if ci == 0 && rng.chance(0.6) {
                to_cyrillic(&name)
            } else {
                let tokens: Vec<&str> = name.split(' ').collect();
                if tokens.len() > 2 && rng.chance(0.5) {
                    format!("{} {}", tokens[0], tokens[tokens.len() - 1])
                } else {
                    transliteration_variant(rng, &name)
                        .map(|v| title_case(&v))
                        .unwrap_or_else(|| name.to_uppercase())
                }
            };
            entry.aliases.push(alias);
        }
        if kind == EntryKind::Sanction {
            entry
                .programs
                .push("SAMPLE-PROGRAMME (generated data, not a real list)".to_owned());
        }
        entries.push(entry.normalized());
    }
    entries
}

fn title_case(name: &str) -> String {
    name.split(' ')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// A Latin name written in Cyrillic the way a Russian document would (roughly).
pub fn to_cyrillic(name: &str) -> String {
    const MULTI: &[(&str, &str)] = &[
        ("shch", "щ"),
        ("sh", "ш"),
        ("ch", "ч"),
        ("zh", "ж"),
        ("kh", "х"),
        ("ts", "ц"),
        ("ya", "я"),
        ("yu", "ю"),
        ("ye", "е"),
        ("yo", "ё"),
        ("iy", "ий"),
        ("ei", "ей"),
    ];
    const SINGLE: &[(char, &str)] = &[
        ('a', "а"),
        ('b', "б"),
        ('v', "в"),
        ('w', "в"),
        ('g', "г"),
        ('d', "д"),
        ('e', "е"),
        ('z', "з"),
        ('i', "и"),
        ('j', "й"),
        ('k', "к"),
        ('c', "к"),
        ('q', "к"),
        ('l', "л"),
        ('m', "м"),
        ('n', "н"),
        ('o', "о"),
        ('p', "п"),
        ('r', "р"),
        ('s', "с"),
        ('t', "т"),
        ('u', "у"),
        ('f', "ф"),
        ('h', "х"),
        ('x', "кс"),
        ('y', "ы"),
    ];
    let mut words = Vec::new();
    for word in name.split(' ') {
        let lower = deunicode::deunicode(word).to_lowercase();
        let mut out = String::new();
        let mut rest = lower.as_str();
        'outer: while let Some(c) = rest.chars().next() {
            for (latin, cyr) in MULTI {
                if let Some(r) = rest.strip_prefix(latin) {
                    out.push_str(cyr);
                    rest = r;
                    continue 'outer;
                }
            }
            if c == 'y' && rest.len() == 1 {
                out.push('й');
            } else if let Some((_, cyr)) = SINGLE.iter().find(|(l, _)| *l == c) {
                out.push_str(cyr);
            } else {
                out.push(c);
            }
            rest = &rest[c.len_utf8()..];
        }
        let mut chars = out.chars();
        let capitalized = match chars.next() {
            Some(f) => f.to_uppercase().chain(chars).collect(),
            None => out,
        };
        words.push(capitalized);
    }
    words.join(" ")
}

/// Spelling alternatives between transliteration systems: (from, to), lowercase.
const TRANSLITERATIONS: &[(&str, &str)] = &[
    ("mm", "m"),
    ("ph", "f"),
    ("f", "ph"),
    ("ou", "u"),
    ("u", "ou"),
    ("ee", "i"),
    ("y", "i"),
    ("i", "y"),
    ("kh", "h"),
    ("sh", "sch"),
    ("v", "w"),
    ("w", "v"),
    ("ks", "x"),
    ("x", "ks"),
    ("c", "k"),
    ("ei", "ey"),
    ("ey", "ei"),
    ("ie", "y"),
    ("ed", "ad"),
    ("ad", "ed"),
    ("j", "dj"),
    ("ch", "tch"),
    ("ts", "tz"),
    ("al-", "el "),
    ("al-", ""),
];

/// The name with one transliteration alternative applied (lowercased), if any applies.
pub fn transliteration_variant(rng: &mut Rng, name: &str) -> Option<String> {
    let lower = deunicode::deunicode(name).to_lowercase();
    let start = rng.below(TRANSLITERATIONS.len());
    for k in 0..TRANSLITERATIONS.len() {
        let (from, to) = TRANSLITERATIONS[(start + k) % TRANSLITERATIONS.len()];
        let hits: Vec<usize> = lower.match_indices(from).map(|(i, _)| i).collect();
        if hits.is_empty() {
            continue;
        }
        let at = hits[rng.below(hits.len())];
        return Some(format!("{}{to}{}", &lower[..at], &lower[at + from.len()..]));
    }
    None
}

/// The kinds of spelling variant [`spelling_variant`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    DropLetter,
    DoubleLetter,
    SwapLetters,
    TokenOrder,
    LastCommaFirst,
    Accents,
    MiddleInitial,
    Transliteration,
    Cyrillic,
}

impl Variant {
    pub const ALL: [Variant; 9] = [
        Variant::DropLetter,
        Variant::DoubleLetter,
        Variant::SwapLetters,
        Variant::TokenOrder,
        Variant::LastCommaFirst,
        Variant::Accents,
        Variant::MiddleInitial,
        Variant::Transliteration,
        Variant::Cyrillic,
    ];
}

fn letter_edit(rng: &mut Rng, name: &str, variant: Variant) -> Option<String> {
    let tokens: Vec<&str> = name.split(' ').collect();
    // Typos in tokens of three letters or fewer are ambiguous by nature: not generated.
    let long: Vec<usize> = (0..tokens.len())
        .filter(|&i| tokens[i].chars().filter(|c| c.is_alphabetic()).count() >= 4)
        .collect();
    if long.is_empty() {
        return None;
    }
    let ti = long[rng.below(long.len())];
    let mut chars: Vec<char> = tokens[ti].chars().collect();
    // The first letter is left alone (typos there are rare and defeat any prefix scheme).
    let pos = 1 + rng.below(chars.len() - 1);
    match variant {
        Variant::DropLetter => {
            chars.remove(pos);
        }
        Variant::DoubleLetter => chars.insert(pos, chars[pos]),
        _ => {
            if pos + 1 >= chars.len() {
                chars.swap(pos - 1, pos);
            } else {
                chars.swap(pos, pos + 1);
            }
        }
    }
    let edited: String = chars.into_iter().collect();
    let mut out: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
    out[ti] = edited;
    Some(out.join(" "))
}

fn add_accents(rng: &mut Rng, name: &str) -> String {
    if !name.is_ascii() {
        return deunicode::deunicode(name);
    }
    const ACCENTED: &[(char, &[char])] = &[
        ('a', &['á', 'à', 'ä', 'â']),
        ('e', &['é', 'è', 'ë', 'ê']),
        ('i', &['í', 'ï', 'î']),
        ('o', &['ó', 'ö', 'ô', 'ø']),
        ('u', &['ú', 'ü', 'û']),
        ('n', &['ñ']),
        ('c', &['ç']),
        ('s', &['ş', 'š']),
    ];
    let mut chars: Vec<char> = name.chars().collect();
    let spots: Vec<usize> = (0..chars.len())
        .filter(|&i| ACCENTED.iter().any(|(c, _)| *c == chars[i]))
        .collect();
    for _ in 0..2 {
        if spots.is_empty() {
            break;
        }
        let i = spots[rng.below(spots.len())];
        if let Some((_, options)) = ACCENTED.iter().find(|(c, _)| *c == chars[i]) {
            chars[i] = *rng.pick(options);
        }
    }
    chars.into_iter().collect()
}

/// A spelling variant of `name` of a random kind (falls back to a doubled letter, then to
/// token order, when the kind does not apply).
pub fn spelling_variant(rng: &mut Rng, name: &str) -> (String, Variant) {
    let variant = *rng.pick(&Variant::ALL);
    spelling_variant_of(rng, name, variant)
}

/// A spelling variant of `name` of the given kind, or of a fallback kind when it does not apply.
pub fn spelling_variant_of(rng: &mut Rng, name: &str, variant: Variant) -> (String, Variant) {
    let tokens: Vec<&str> = name.split(' ').filter(|t| !t.is_empty()).collect();
    let made = match variant {
        Variant::DropLetter | Variant::DoubleLetter | Variant::SwapLetters => {
            letter_edit(rng, name, variant)
        }
        Variant::TokenOrder if tokens.len() >= 2 => {
            let mut t = tokens.clone();
            t.rotate_left(1 + rng.below(tokens.len() - 1));
            Some(t.join(" "))
        }
        Variant::LastCommaFirst if tokens.len() >= 2 => {
            let last = tokens[tokens.len() - 1].to_uppercase();
            Some(format!("{last}, {}", tokens[..tokens.len() - 1].join(" ")))
        }
        Variant::Accents => Some(add_accents(rng, name)),
        Variant::MiddleInitial if !tokens.is_empty() => {
            let initial = char::from(b'A' + rng.below(26) as u8);
            let mut t: Vec<String> = tokens.iter().map(|s| (*s).to_owned()).collect();
            t.insert(1, format!("{initial}."));
            Some(t.join(" "))
        }
        Variant::Transliteration => transliteration_variant(rng, name),
        Variant::Cyrillic => Some(to_cyrillic(name)),
        _ => None,
    };
    match made {
        Some(v) if v != name => (v, variant),
        _ if variant != Variant::DoubleLetter && variant != Variant::TokenOrder => {
            spelling_variant_of(rng, name, Variant::DoubleLetter)
        }
        _ if variant == Variant::DoubleLetter => {
            spelling_variant_of(rng, name, Variant::TokenOrder)
        }
        _ => (name.to_uppercase(), variant),
    }
}

/// Entries as an OpenSanctions "simple" CSV file (the header and columns of
/// `targets.simple.csv`). Sanction entries carry their programmes in `sanctions`; `dataset`
/// is the entry's list name.
pub fn to_opensanctions_csv(entries: &[ListEntry]) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let header = [
        "id",
        "schema",
        "name",
        "aliases",
        "birth_date",
        "countries",
        "addresses",
        "identifiers",
        "sanctions",
        "phones",
        "emails",
        "dataset",
        "first_seen",
        "last_seen",
        "last_change",
    ];
    // Writing to a Vec cannot fail.
    let _ = w.write_record(header);
    for e in entries {
        let sanctions = if e.kind == EntryKind::Sanction {
            e.programs.join(";")
        } else {
            String::new()
        };
        let countries: Vec<String> = e.countries.iter().map(|c| c.to_lowercase()).collect();
        let _ = w.write_record([
            e.entity_id.as_str(),
            "Person",
            &e.name,
            &e.aliases.join(";"),
            &e.birthdates.join(";"),
            &countries.join(";"),
            "",
            "",
            &sanctions,
            "",
            "",
            &e.list,
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00",
        ]);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// Generated organizations in OpenSanctions simple CSV rows (no header), to show that
/// non-person rows are skipped.
fn organization_rows(rng: &mut Rng, count: usize, list: &str) -> String {
    const KINDS: &[&str] = &[
        "Trading LLC",
        "Shipping Ltd",
        "Holding SA",
        "Industries JSC",
    ];
    let mut out = String::new();
    for i in 1..=count {
        let name = format!(
            "{} {}",
            surname_for(rng.next_u64() % 100_000),
            rng.pick(KINDS)
        );
        out.push_str(&format!(
            "{list}-org-{i:04},Organization,{name},,,,,,,,,{list},2024-01-01T00:00:00,\
             2024-01-01T00:00:00,2024-01-01T00:00:00\n"
        ));
    }
    out
}

/// The shipped `data/lists/sample-watchlist.csv`: 2,000 generated sanctioned persons and 10
/// organizations (skipped on import), list `sample-watchlist`.
pub fn sample_watchlist_csv() -> String {
    let mut rng = Rng::new(20_240_601);
    let entries = generate_entries(
        &mut rng,
        2_000,
        "sample-watchlist",
        EntryKind::Sanction,
        "sw",
    );
    let mut csv = to_opensanctions_csv(&entries);
    csv.push_str(&organization_rows(&mut rng, 10, "sample-watchlist"));
    csv
}

/// The shipped `data/lists/sample-pep.csv`: 500 generated politically exposed persons,
/// list `sample-pep`.
pub fn sample_pep_csv() -> String {
    let mut rng = Rng::new(20_240_602);
    let entries = generate_entries(&mut rng, 500, "sample-pep", EntryKind::Pep, "pep");
    to_opensanctions_csv(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_distinct() {
        let a = generate_entries(&mut Rng::new(5), 500, "l", EntryKind::Sanction, "x");
        let b = generate_entries(&mut Rng::new(5), 500, "l", EntryKind::Sanction, "x");
        assert_eq!(a, b);
        let names: HashSet<String> = a.iter().map(|e| normalize_name(&e.name)).collect();
        assert_eq!(names.len(), 500);
        assert!(a.iter().all(|e| e.name.split(' ').count() >= 2));
        assert_eq!(a[0].entity_id, "x-000001");
    }

    #[test]
    fn cyrillic_round_trips_through_transliteration() {
        let c = to_cyrillic("Sergei Petrovich Kuznetsov");
        assert!(!c.is_ascii(), "{c}");
        let back = normalize_name(&c);
        let score = super::super::score::name_similarity(&back, "Sergei Petrovich Kuznetsov");
        assert!(score > 0.9, "{c} → {back}: {score}");
    }

    #[test]
    fn every_variant_kind_changes_the_name() {
        let mut rng = Rng::new(3);
        for v in Variant::ALL {
            let (out, _) = spelling_variant_of(&mut rng, "Mohammed bin Rashid al-Qahtani", v);
            assert_ne!(out, "Mohammed bin Rashid al-Qahtani", "{v:?}");
        }
    }
}
