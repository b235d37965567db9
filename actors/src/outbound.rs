//! The URLs the service fetches on someone's behalf (import sources, product images) and the
//! HTTP client that fetches them: one rule for the first URL and for every redirect, so that
//! the service is not a way into its own network.

use std::time::Duration;

/// Whether the service may fetch `url` (an import source, a product image): HTTP(S) with a
/// host, and not naming a loopback, private or link-local address unless `private_ok` (the
/// setting named `setting`): the service should not be a way into its own network.
pub fn check(url: &url::Url, private_ok: bool, setting: &str) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be http or https".into());
    }
    let private = match url.host() {
        None => return Err("has no host".into()),
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private())
        }
    };
    if private && !private_ok {
        return Err(format!(
            "names a loopback, private or link-local address (allowed only with {setting})"
        ));
    }
    Ok(())
}

/// A client for outbound fetches: at most 5 redirects, each checked by [`check`] like the first
/// URL (`setting` names the switch that allows private addresses), connecting within
/// `connect_timeout`.
pub fn client(connect_timeout: Duration, private_ok: bool, setting: &'static str) -> reqwest::Client {
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 {
            attempt.error("more than 5 redirects")
        } else if let Err(reason) = check(attempt.url(), private_ok, setting) {
            attempt.error(format!("a redirect to a url that {reason}"))
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("products-manager/", env!("CARGO_PKG_VERSION")))
        .redirect(policy)
        .connect_timeout(connect_timeout)
        .build()
        .unwrap_or_default()
}

/// An error and its causes in one line (reqwest's own message is only the outermost: "error
/// sending request").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::check;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn private_addresses_need_the_setting() {
        for u in [
            "http://127.0.0.1/a.jpg",
            "http://localhost:8080/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(check(&url(u), false, "x").is_err(), "{u}");
            assert!(check(&url(u), true, "x").is_ok(), "{u}");
        }
        assert!(check(&url("https://images.example.com/a.jpg"), false, "x").is_ok());
        assert!(check(&url("ftp://example.com/a.jpg"), true, "x").is_err());
    }
}
