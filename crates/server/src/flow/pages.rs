//! The flow's pages: askama templates (HTML-escaped by default) and the responses that carry
//! them, with the headers every flow page gets.

use askama::Template;
use axum::{http::StatusCode, response::Response};

/// A choice of a `<select>` or a group of checkboxes.
#[derive(Debug, Clone)]
pub(super) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One form control with its label, hint and error.
#[derive(Debug, Clone)]
pub(super) struct Input {
    /// The element id (also the target of the error summary's links).
    pub id: String,
    /// The form field name.
    pub name: String,
    pub label: String,
    /// `text`, `email`, `tel`, `date`, `number`, `checkbox`, `checkboxes`, `select`,
    /// `textarea` or `file`.
    pub control: &'static str,
    pub value: String,
    pub options: Vec<Choice>,
    pub checked: bool,
    pub required: bool,
    pub hint: Option<String>,
    pub error: Option<String>,
    /// The ids of the hint and the error, for `aria-describedby`.
    pub described_by: String,
    pub accept: &'static str,
    pub autocomplete: Option<&'static str>,
}

impl Input {
    pub fn new(name: String, label: String, control: &'static str) -> Self {
        Self {
            id: name.replace('.', "-"),
            name,
            label,
            control,
            value: String::new(),
            options: vec![],
            checked: false,
            required: true,
            hint: None,
            error: None,
            described_by: String::new(),
            accept: "",
            autocomplete: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    pub fn autocomplete(mut self, autocomplete: Option<&'static str>) -> Self {
        self.autocomplete = autocomplete;
        self
    }

    pub fn choices<'a>(mut self, choices: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.options = choices
            .into_iter()
            .map(|(value, label)| Choice {
                value: value.to_owned(),
                label: label.to_owned(),
                selected: false,
            })
            .collect();
        self
    }

    /// Fills in what the user entered, and the error found in it; computes
    /// `aria-describedby`.
    pub fn finish(mut self, entered: &[String], error: Option<&String>) -> Self {
        match self.control {
            "file" => {}
            "checkbox" => self.checked = entered.iter().any(|v| v == "true"),
            "checkboxes" | "select" => {
                for choice in &mut self.options {
                    choice.selected = entered.contains(&choice.value);
                }
            }
            _ => self.value = entered.first().cloned().unwrap_or_default(),
        }
        self.error = error.cloned();
        let mut described = vec![];
        if self.hint.is_some() {
            described.push(format!("{}-hint", self.id));
        }
        if self.error.is_some() {
            described.push(format!("{}-error", self.id));
        }
        self.described_by = described.join(" ");
        self
    }
}

/// A set of inputs; a fieldset with a legend when `legend` is set.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub legend: Option<String>,
    pub intro: Option<String>,
    pub inputs: Vec<Input>,
}

/// One line of the error summary, linking to its input when it has one.
#[derive(Debug, Clone)]
pub(super) struct SummaryError {
    pub target: Option<String>,
    pub message: String,
}

#[derive(Debug, Template)]
#[template(path = "flow/form.html")]
pub(super) struct FormPage {
    pub title: String,
    pub heading: String,
    pub intro: Vec<String>,
    pub errors: Vec<SummaryError>,
    pub notices: Vec<String>,
    pub show_form: bool,
    pub csrf: String,
    pub groups: Vec<Group>,
    pub submit_label: &'static str,
}

#[derive(Debug, Template)]
#[template(path = "flow/message.html")]
pub(super) struct MessagePage {
    pub title: String,
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub request_id: Option<String>,
    /// Reloads the page every 2 seconds (the processing page; no JavaScript needed).
    pub refresh: bool,
    /// `info`, `success`, `failure` or `problem` (a CSS class).
    pub tone: &'static str,
}

use crate::web::html;

impl MessagePage {
    pub fn new(tone: &'static str, heading: &str, paragraphs: &[&str]) -> Self {
        Self {
            title: heading.to_owned(),
            heading: heading.to_owned(),
            paragraphs: paragraphs.iter().map(|p| (*p).to_owned()).collect(),
            request_id: None,
            refresh: false,
            tone,
        }
    }

    pub fn respond(self, status: StatusCode) -> Response {
        html(status, self.render())
    }
}

impl FormPage {
    pub fn respond(self, status: StatusCode) -> Response {
        html(status, self.render())
    }
}
