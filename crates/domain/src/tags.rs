//! Inquiry tags.

const MAX_TAGS: usize = 50;
const MAX_TAG_CHARS: usize = 64;

/// Normalizes a tag list: trims each tag and drops repeats (keeping the first occurrence).
/// Fails on empty or over-long tags, control characters, or more than 50 distinct tags.
pub fn validate_tags(tags: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err("tags must not be empty".to_owned());
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(format!(
                "tag `{tag}` is longer than {MAX_TAG_CHARS} characters"
            ));
        }
        if tag.chars().any(char::is_control) {
            return Err("tags must not contain control characters".to_owned());
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(format!("an inquiry can have at most {MAX_TAGS} tags"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn trims_and_deduplicates_in_first_order() {
        let tags = strings(&[" vip ", "b", "vip", "a", "b"]);
        assert_eq!(validate_tags(&tags).unwrap(), strings(&["vip", "b", "a"]));
    }

    #[test]
    fn rejects_bad_tags() {
        assert!(validate_tags(&strings(&["  "])).is_err());
        assert!(validate_tags(&strings(&["a\u{7}b"])).is_err());
        assert!(validate_tags(&["x".repeat(65)]).is_err());
        assert!(validate_tags(&["é".repeat(64)]).is_ok());
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        assert!(validate_tags(&many).is_err());
        let repeated: Vec<String> = (0..60).map(|i| format!("t{}", i % 50)).collect();
        assert_eq!(validate_tags(&repeated).unwrap().len(), 50);
    }
}
