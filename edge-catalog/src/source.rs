//! Where catalog data comes from: the origin's catalog API everywhere, or
//! Postgres directly where the platform offers a pooled connection (a
//! Hyperdrive binding on Workers). Both answer with the same JSON, because
//! the origin's API and direct reads call the same SQL functions.

use edge_platform::Runtime;
use uuid::Uuid;
use wire::query::ListQuery;

/// What a page shows.
pub enum CatalogRead {
    List(ListQuery),
    Event(Uuid),
}

impl CatalogRead {
    /// The origin API path of this data; pages are cached under it.
    pub fn origin_path(&self) -> String {
        match self {
            CatalogRead::List(query) => format!("/api/v1/events?{}", query.canonical()),
            CatalogRead::Event(id) => format!("/api/v1/events/{id}"),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum ReadError {
    NotFound,
    Unavailable,
}

pub trait CatalogSource {
    /// The catalog JSON for `read`, as `GET {origin_path}` answers it.
    fn read(&self, read: &CatalogRead) -> impl Future<Output = Result<Vec<u8>, ReadError>>;
}

/// The origin's catalog API over outbound HTTP.
pub struct OriginApi<'a, R> {
    pub runtime: &'a R,
    pub origin_url: &'a str,
}

impl<R: Runtime> CatalogSource for OriginApi<'_, R> {
    async fn read(&self, read: &CatalogRead) -> Result<Vec<u8>, ReadError> {
        let path = read.origin_path();
        let request = http::Request::get(format!("{}{path}", self.origin_url))
            .header("accept", "application/json")
            .body(Vec::new())
            .expect("a valid request");
        let response = match self.runtime.send(request).await {
            Ok(response) => response,
            Err(e) => {
                self.runtime.log(&format!("origin request failed: {e}"));
                return Err(ReadError::Unavailable);
            }
        };
        match response.status().as_u16() {
            200 => Ok(response.into_body()),
            404 => Err(ReadError::NotFound),
            status => {
                self.runtime.log(&format!("origin answered {status} for {path}"));
                Err(ReadError::Unavailable)
            }
        }
    }
}
