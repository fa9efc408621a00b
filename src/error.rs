//! `ApiError`: every way a request can fail, its status, and its one rendering.
//!
//! The body follows the OpenPush v0.1 `Error` schema (`status`, `title`, `detail`, `type`).
//! A 401 always carries `WWW-Authenticate`; a 405 names the allowed methods; a 429 or 503
//! tells when to retry. Details never contain a secret.

use crate::http::Response;
use crate::http::response::reason;
use crate::json;
use crate::store;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized,
    /// A push to a VAPID-bound endpoint without a valid VAPID token (the reason).
    VapidRequired(&'static str),
    Forbidden(String),
    NotFound(&'static str),
    /// The methods the path allows, as `Allow` lists them.
    MethodNotAllowed(String),
    Conflict(String),
    TooLarge(String),
    UnsupportedMediaType(String),
    TooMany {
        detail: String,
        retry_after_secs: u64,
    },
    Unavailable(String),
    InsufficientStorage,
    /// The store's budget for messages is used up (the reason).
    NoRoom(String),
    Internal,
    /// A parse error with its own status.
    Http(u16, &'static str),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized | ApiError::VapidRequired(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::TooMany { .. } => 429,
            ApiError::Unavailable(_) => 503,
            ApiError::InsufficientStorage | ApiError::NoRoom(_) => 507,
            ApiError::Internal => 500,
            ApiError::Http(status, _) => *status,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            ApiError::BadRequest(d) | ApiError::Conflict(d) | ApiError::TooLarge(d) => d.clone(),
            ApiError::UnsupportedMediaType(d) => d.clone(),
            ApiError::Unavailable(d) | ApiError::NoRoom(d) => d.clone(),
            ApiError::TooMany { detail, .. } => detail.clone(),
            ApiError::Unauthorized => "valid credentials are required".into(),
            ApiError::VapidRequired(why) => {
                format!("this endpoint requires VAPID (RFC 8292): {why}")
            }
            ApiError::Forbidden(d) => d.clone(),
            ApiError::NotFound(d) | ApiError::Http(_, d) => (*d).into(),
            ApiError::MethodNotAllowed(allow) => format!("allowed methods: {allow}"),
            ApiError::InsufficientStorage => {
                "the server's disk is full; nothing was stored, try again later".into()
            }
            ApiError::Internal => "internal error; it has been logged".into(),
        }
    }

    pub fn to_response(&self) -> Response {
        let status = self.status();
        let body = format!(
            "{{\"status\":{status},\"title\":{},\"detail\":{},\"type\":\"about:blank\"}}",
            json::string(reason(status)),
            json::string(&self.detail())
        );
        let mut response = Response::new(status).with_body("application/problem+json", body);
        match self {
            ApiError::Unauthorized => {
                response = response.header("WWW-Authenticate", "Basic realm=\"openpush\"");
            }
            ApiError::VapidRequired(_) => response = response.header("WWW-Authenticate", "vapid"),
            ApiError::MethodNotAllowed(allow) => response = response.header("Allow", allow.clone()),
            ApiError::TooMany {
                retry_after_secs, ..
            } => {
                response = response.header("Retry-After", retry_after_secs.to_string());
            }
            ApiError::Unavailable(_) | ApiError::InsufficientStorage | ApiError::NoRoom(_) => {
                response = response.header("Retry-After", "30");
            }
            _ => {}
        }
        response
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> ApiError {
        match e {
            store::Error::Full => {
                log::error!("store: {e}");
                ApiError::InsufficientStorage
            }
            store::Error::Busy | store::Error::Closed | store::Error::Io(_) => {
                log::warn!("store: {e}");
                ApiError::Unavailable(format!("{e}; try again later"))
            }
            store::Error::Storage(_) => {
                log::error!("store: {e}");
                ApiError::Internal
            }
        }
    }
}

impl From<store::accounts::Refusal> for ApiError {
    fn from(r: store::accounts::Refusal) -> ApiError {
        use store::accounts::Refusal;
        match r {
            Refusal::NotFound => ApiError::NotFound("no such resource"),
            Refusal::Conflict(d) => ApiError::Conflict(d),
            Refusal::Invalid(d) => ApiError::BadRequest(d),
            Refusal::Limit(d) => ApiError::Forbidden(d),
        }
    }
}

impl From<crate::names::Invalid> for ApiError {
    fn from(invalid: crate::names::Invalid) -> ApiError {
        ApiError::BadRequest(invalid.0)
    }
}
