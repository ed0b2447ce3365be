//! The two environments every organization has.

string_enum! {
    /// Every object belongs to exactly one environment of its organization.
    pub enum Environment ("environment", all: array) {
        Sandbox = "sandbox",
        Production = "production",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_strings_and_serde() {
        for env in Environment::ALL {
            assert_eq!(env.as_str().parse::<Environment>(), Ok(env));
            let json = serde_json::to_value(env).unwrap();
            assert_eq!(json, env.to_string());
            assert_eq!(serde_json::from_value::<Environment>(json).unwrap(), env);
        }
    }

    #[test]
    fn rejects_unknown_names_clearly() {
        let err = "Production".parse::<Environment>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`Production` is not a valid environment (expected one of: sandbox, production)"
        );
    }
}
