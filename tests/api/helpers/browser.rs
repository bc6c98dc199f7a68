//! A browser for the portal over plain HTTP: keeps its cookies, follows nothing by itself
//! (tests look at each redirect), and posts forms with the form token of the last page.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::TestApp;

pub struct Browser<'a> {
    pub app: &'a TestApp,
    client: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
    /// The form token of the last page that had one.
    token: Mutex<Option<String>>,
    /// Sent with every request (a language, an origin).
    extra_headers: Vec<(String, String)>,
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The `<html lang>` of the page.
    pub fn lang(&self) -> Option<&str> {
        let start = self.body.find("<html lang=\"")? + 12;
        let end = self.body[start..].find('"')? + start;
        Some(&self.body[start..end])
    }

    pub fn contains(&self, text: &str) -> bool {
        self.body.contains(text)
    }

    /// The value of the input named `name`.
    pub fn input(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\"");
        let at = self.body.find(&marker)?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = self.body[at..].find('>')? + at;
        let tag = &self.body[tag_start..tag_end];
        let value = tag.find("value=\"")? + 7;
        let end = tag[value..].find('"')? + value;
        Some(html_unescape(&tag[value..end]))
    }

    /// The error shown next to the field `name`, if any.
    pub fn field_error(&self, name: &str) -> Option<String> {
        let marker = format!("id=\"{name}-error\">");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('<')? + start;
        Some(html_unescape(&self.body[start..end]))
    }

    /// The first `sk-…` key shown as plain text.
    pub fn new_key(&self) -> Option<String> {
        let tag = self.body.find("id=\"new-key\"")?;
        let start = self.body[tag..].find('>')? + tag + 1;
        let end = self.body[start..].find('<')? + start;
        Some(self.body[start..end].to_string())
    }
}

/// Undoes HTML escaping: the named entities and numeric ones (`&#34;`, `&#x27;`).
pub fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|end| *end <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "quot" => Some('"'),
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        Browser::with_headers(app, &[])
    }

    pub fn with_headers(app: &'a TestApp, headers: &[(&str, &str)]) -> Browser<'a> {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: Mutex::new(BTreeMap::new()),
            token: Mutex::new(None),
            extra_headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .unwrap()
            .insert(name.to_string(), value.to_string());
    }

    /// The form token of the last page.
    pub fn token(&self) -> String {
        self.token.lock().unwrap().clone().unwrap_or_default()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let mut request = request.header("cookie", self.cookie_header());
        for (name, value) in &self.extra_headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.expect("the portal answers");
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let mut cookies = self.cookies.lock().unwrap();
                if text.contains("Max-Age=0") || value.is_empty() {
                    cookies.remove(name.trim());
                } else {
                    cookies.insert(name.trim().to_string(), value.to_string());
                }
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        let answer = Answer {
            status,
            location,
            headers,
            body,
        };
        if let Some(token) = answer.input("csrf_token") {
            *self.token.lock().unwrap() = Some(token);
        }
        answer
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.app.url(path))).await
    }

    /// Posts a form with the last page's token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let token = self.token();
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    /// Posts exactly these fields (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(fields).expect("a form");
        self.send(
            self.client
                .post(self.app.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// Registers and signs in through the pages.
    pub async fn register(&self, username: &str, password: &str) -> Answer {
        self.get("/register").await;
        let email = format!("{username}@example.com");
        self.post(
            "/register",
            &[
                ("username", username),
                ("email", &email),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await
    }

    pub async fn sign_in(&self, login: &str, password: &str) -> Answer {
        self.get("/login").await;
        self.post("/login", &[("login", login), ("password", password)])
            .await
    }
}
