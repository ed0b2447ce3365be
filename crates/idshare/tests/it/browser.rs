//! A browser without JavaScript for the hosted-flow tests: no automatic redirects, cookies
//! kept by hand, multipart forms built by hand.

use reqwest::{StatusCode, header, redirect::Policy};

use crate::helpers::TestApp;

/// A browser without JavaScript: no automatic redirects, cookies kept by hand.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    /// The `Cookie` header it sends: `name=value` pairs separated by `; `.
    pub cookie: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    /// The first `Set-Cookie` header.
    pub set_cookie: Option<String>,
    /// Every `Set-Cookie` header.
    pub set_cookies: Vec<String>,
    pub content_type: String,
    pub body: String,
}

impl Page {
    /// The `name` of every form control on the page (CSRF excluded).
    pub fn inputs(&self) -> Vec<String> {
        let marker = " name=\"";
        let mut names = vec![];
        let mut rest = self.body.as_str();
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let end = rest.find('"').expect("end of the name");
            let name = &rest[..end];
            if name.contains('.') {
                names.push(name.to_owned());
            }
            rest = &rest[end..];
        }
        names.sort();
        names.dedup();
        names
    }

    /// The hidden CSRF token of the page's form.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a CSRF input") + marker.len();
        let end = self.body[start..].find('"').expect("end of the value");
        self.body[start..start + end].to_owned()
    }

    pub fn assert_html(&self) {
        assert!(
            self.content_type.starts_with("text/html"),
            "an HTML page, not {}: {}",
            self.content_type,
            self.body
        );
        assert!(self.body.contains("<html lang=\"en\">"), "{}", self.body);
        assert!(self.body.contains("<title>"), "{}", self.body);
    }
}

/// A multipart/form-data body built by hand (the test client has no multipart support).
#[derive(Default)]
pub struct Form {
    pub parts: Vec<u8>,
}

const BOUNDARY: &str = "----idshareFlowTestBoundary7MA4YWxkTrZu0gW";

impl Form {
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.parts.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
        self
    }

    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Self {
        self.parts.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        self.parts.extend_from_slice(bytes);
        self.parts.extend_from_slice(b"\r\n");
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.parts
            .extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.parts
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: app.address.clone(),
            cookie: None,
        }
    }

    pub async fn read(response: reqwest::Response) -> Page {
        let header = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status();
        let location = header(header::LOCATION);
        let set_cookie = header(header::SET_COOKIE);
        let set_cookies = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
        let body = response.text().await.expect("body");
        Page {
            status,
            location,
            set_cookie,
            set_cookies,
            content_type,
            body,
        }
    }

    /// GETs a path or a full URL, keeping a cookie the server sets.
    pub async fn get(&mut self, url: &str) -> Page {
        // Links carry the configured public URL, which in tests names port 0: keep the path.
        let path = match url.find("/flow/") {
            Some(at) if url.starts_with("http") => &url[at..],
            _ => url,
        };
        let url = format!("{}{path}", self.base);
        let mut request = self.client.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let page = Self::read(request.send().await.expect("request")).await;
        self.keep_cookies(&page);
        page
    }

    /// Keeps the cookies `page` sets, and forgets those it deletes (`Max-Age=0`).
    fn keep_cookies(&mut self, page: &Page) {
        let mut jar: Vec<(String, String)> = self
            .cookie
            .iter()
            .flat_map(|c| c.split("; "))
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        for set in &page.set_cookies {
            let Some((name, value)) = set.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            jar.retain(|(kept, _)| kept != name);
            if !set.contains("Max-Age=0") {
                jar.push((name.to_owned(), value.to_owned()));
            }
        }
        self.cookie = (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
    }

    pub async fn post(&self, form: Form) -> Page {
        let mut request = self
            .client
            .post(format!("{}/flow/inquiry", self.base))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(form.finish());
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        Self::read(request.send().await.expect("request")).await
    }

    /// POSTs an urlencoded form to a path, keeping a cookie the server sets (the dashboard).
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let page = Self::read(request.send().await.expect("request")).await;
        self.keep_cookies(&page);
        page
    }

    /// Opens a link: expects the 303 to the flow with a cookie.
    pub async fn open(&mut self, link: &str) {
        let page = self.get(link).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location.as_deref(), Some("/flow/inquiry"));
        let cookie = page.set_cookie.expect("a cookie");
        for attribute in ["idshare_flow=", "HttpOnly", "SameSite=Lax", "Path=/flow"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    }
}
