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

    /// Whether the route matches a path split into its non-empty `parts`.
    fn matches(&self, parts: &[&str]) -> bool {
        let fits = if self.wildcard {
            parts.len() >= self.segments.len()
        } else {
            parts.len() == self.segments.len()
        };
        fits && self.segments.iter().zip(parts).all(|(segment, part)| match segment {
            Segment::Literal(expected) => expected == part,
            Segment::Param => true,
        })
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
    /// Indexes into `routes`, most specific first (the earlier on a tie),
    /// so the first match is the one to take: every request is routed,
    /// and a manifest has dozens of routes.
    by_specificity: Vec<usize>,
}

impl Router {
    pub fn new(routes: Vec<(RoutePattern, usize)>) -> Self {
        let mut by_specificity: Vec<usize> = (0..routes.len()).collect();
        // Stable: ties keep the manifest's order.
        by_specificity.sort_by_key(|&i| std::cmp::Reverse(routes[i].0.specificity()));
        Self { routes, by_specificity }
    }

    /// The most specific route matching `path`; the earlier one on a tie.
    pub fn route(&self, path: &str) -> Option<(&RoutePattern, usize)> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.by_specificity
            .iter()
            .map(|&i| &self.routes[i])
            .find(|(pattern, _)| pattern.matches(&parts))
            .map(|(pattern, index)| (pattern, *index))
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

    /// The first match in order of specificity is the best match of all.
    #[test]
    fn every_path_goes_where_the_most_specific_match_says() {
        let routes = [
            "/...",
            "/api/...",
            "/api/v1/events/:id",
            "/api/v1/events/:id/queue/...",
            "/api/v1/events/:id/queue/join",
            "/api/v1/:kind/...",
            "/events/:id",
            "/events/new",
            "/events/:id/checkout/...",
            "/events/:id/:page",
            "/health",
        ];
        let r = router(&routes);
        let patterns: Vec<RoutePattern> = routes.iter().map(|p| RoutePattern::parse(p).unwrap()).collect();
        for path in [
            "/",
            "/health",
            "/health/x",
            "/api",
            "/api/v1",
            "/api/v1/events",
            "/api/v1/events/7",
            "/api/v1/events/7/queue",
            "/api/v1/events/7/queue/join",
            "/api/v1/events/7/queue/status",
            "/api/v1/orders/x/y",
            "/events",
            "/events/new",
            "/events/7",
            "/events/7/checkout",
            "/events/7/checkout/a/b",
            "/events/7/seats",
            "/events/7/seats/x",
            "//events//7/",
        ] {
            let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            // The definition: every match, the most specific, the earliest on a tie.
            let mut best: Option<usize> = None;
            for (i, pattern) in patterns.iter().enumerate().filter(|(_, p)| p.matches(&parts)) {
                if best.is_none_or(|b| pattern.specificity() > patterns[b].specificity()) {
                    best = Some(i);
                }
            }
            assert_eq!(r.route(path).map(|(_, i)| i), best, "{path}");
        }
    }

    #[test]
    fn malformed_routes_are_refused() {
        assert!(RoutePattern::parse("api").is_err());
        assert!(RoutePattern::parse("/a/.../b").is_err());
        assert!(RoutePattern::parse("/a/:").is_err());
        assert_eq!(RoutePattern::parse("/api/...").unwrap().base(), "/api");
    }
}
