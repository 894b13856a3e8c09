//! Spin's HTTP route patterns: exact paths, `:name` segments and a trailing
//! `/...` wildcard. The most specific matching route wins, as in Spin: exact
//! routes before wildcards, then more segments, then more literal segments.

/// One `route = "..."` entry of an HTTP trigger.
#[derive(Debug, Clone)]
pub struct RoutePattern {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param,
}

impl RoutePattern {
    pub fn parse(route: &str) -> Result<Self, String> {
        if !route.starts_with('/') {
            return Err("routes start with `/`".into());
        }
        let (prefix, wildcard) = match route.strip_suffix("/...") {
            Some(prefix) => (prefix, true),
            None => (route, false),
        };
        let mut segments = Vec::new();
        for part in prefix.split('/').filter(|s| !s.is_empty()) {
            if part.contains("...") {
                return Err("`...` is only allowed as the last segment".into());
            }
            segments.push(match part.strip_prefix(':') {
                Some("") => return Err("a `:` segment needs a name".into()),
                Some(_) => Segment::Param,
                None => Segment::Literal(part.to_owned()),
            });
        }
        Ok(Self { raw: route.to_owned(), segments, wildcard })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The part of the route before any wildcard, as Spin reports it in
    /// `spin-component-route`.
    pub fn base(&self) -> &str {
        self.raw.strip_suffix("/...").unwrap_or(&self.raw)
    }

    fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/').filter(|s| !s.is_empty());
        for segment in &self.segments {
            match (segment, parts.next()) {
                (_, None) => return false,
                (Segment::Literal(expected), Some(part)) if expected != part => return false,
                _ => {}
            }
        }
        self.wildcard || parts.next().is_none()
    }

    fn specificity(&self) -> (bool, usize, usize) {
        let literals = self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count();
        (!self.wildcard, self.segments.len(), literals)
    }
}

/// Routes requests to the index of the component that serves them.
#[derive(Debug)]
pub struct Router {
    routes: Vec<(RoutePattern, usize)>,
}

impl Router {
    pub fn new(routes: Vec<(RoutePattern, usize)>) -> Self {
        Self { routes }
    }

    /// The most specific route matching `path`; the earlier one on a tie.
    pub fn route(&self, path: &str) -> Option<(&RoutePattern, usize)> {
        let mut best: Option<&(RoutePattern, usize)> = None;
        for candidate in self.routes.iter().filter(|(pattern, _)| pattern.matches(path)) {
            if best.is_none_or(|(b, _)| candidate.0.specificity() > b.specificity()) {
                best = Some(candidate);
            }
        }
        best.map(|(pattern, index)| (pattern, *index))
    }

    pub fn routes(&self) -> impl Iterator<Item = (&RoutePattern, usize)> {
        self.routes.iter().map(|(p, i)| (p, *i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router {
        Router::new(routes.iter().enumerate().map(|(i, r)| (RoutePattern::parse(r).unwrap(), i)).collect())
    }

    #[test]
    fn exact_routes_beat_wildcards_and_longer_prefixes_win() {
        let r = router(&["/...", "/api/...", "/api/v1/events/:id/queue/...", "/health"]);
        assert_eq!(r.route("/").unwrap().1, 0);
        assert_eq!(r.route("/events/7").unwrap().1, 0);
        assert_eq!(r.route("/api").unwrap().1, 1);
        assert_eq!(r.route("/api/v1/events").unwrap().1, 1);
        assert_eq!(r.route("/api/v1/events/7/queue/join").unwrap().1, 2);
        assert_eq!(r.route("/health").unwrap().1, 3);
        assert_eq!(r.route("/health/live").unwrap().1, 0);
    }

    #[test]
    fn literals_beat_parameters_and_exact_routes_need_every_segment() {
        let r = router(&["/events/:id", "/events/new"]);
        assert_eq!(r.route("/events/new").unwrap().1, 1);
        assert_eq!(r.route("/events/42").unwrap().1, 0);
        assert!(r.route("/events").is_none());
        assert!(r.route("/events/42/checkout").is_none());
    }

    #[test]
    fn malformed_routes_are_refused() {
        assert!(RoutePattern::parse("api").is_err());
        assert!(RoutePattern::parse("/a/.../b").is_err());
        assert!(RoutePattern::parse("/a/:").is_err());
        assert_eq!(RoutePattern::parse("/api/...").unwrap().base(), "/api");
    }
}
