//! The pushers' HTTP clients. They ignore HTTP_PROXY and HTTPS_PROXY unless
//! told otherwise: a proxy would resolve `public_only` endpoints itself,
//! past the public-address check, and would see every delivery's secret
//! signature and body.

use std::sync::Arc;

use super::address::PublicOnly;

/// A client for operators' subscriptions and one for `public_only` ones.
#[derive(Clone, Debug)]
pub(crate) struct Clients {
    pub(crate) any: reqwest::Client,
    pub(crate) public: reqwest::Client,
}

impl Clients {
    pub(crate) fn new(use_env_proxy: bool) -> Self {
        let any = builder(use_env_proxy)
            .build()
            .expect("an HTTP client builds");
        let public = builder(use_env_proxy)
            .dns_resolver(Arc::new(PublicOnly))
            // A redirect could lead anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with a resolver builds");
        Self { any, public }
    }
}

fn builder(use_env_proxy: bool) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    if use_env_proxy {
        builder
    } else {
        builder.no_proxy()
    }
}
