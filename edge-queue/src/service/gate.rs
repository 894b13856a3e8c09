//! The gatekeeper: checkout reaches the origin only with a valid access
//! token, and the origin refuses those of sessions that ended; everyone
//! else gets the waiting room. Passing a request on relays
//! the origin's answer as it arrives.

use super::*;

impl<R: Runtime> Room<'_, R> {
    /// A valid access token passes: the origin keeps the list of ended
    /// sessions and refuses theirs, telling us so, and then the visitor gets
    /// the waiting room as if they had presented none. So the gate asks
    /// Redis nothing, and works alike while Redis is away.
    pub(super) async fn gate(&self, event: &str) -> Result<Reply<R>, Problem> {
        let view = self.store.view(event).await?;
        if view.settings.phase(self.now()) == Phase::Open {
            return self.forward(&[]).await;
        }
        if let Ok(Some(access)) = self.access(event).await {
            let (answer, session_ended) = self.pass(&[access]).await?;
            if !(session_ended && answer.status() == StatusCode::UNAUTHORIZED) {
                return Ok(answer);
            }
        }
        if self.wants_html() {
            return self.waiting_page(event, view).await.map(IntoReply::into_reply);
        }
        let status = match self.ticket(event).await {
            Some(ticket) => self.standing(event, &view, &ticket, None).await?,
            None => Status {
                message: Some(format!("join the queue: POST /api/v1/events/{event}/queue/join")),
                ..self.phase_status(event, &view, None)
            },
        };
        let code = StatusCode::from_u16(self.config.blocked_status).expect("checked at start-up");
        let problem = wire::problem::Problem::new(
            "access_token_required",
            "this sale is queue-protected: wait for your turn in the waiting room",
        )
        .with("queue", &status);
        let mut response = json(code, &problem);
        self.set_cookies(&mut response, event, &view, None, status.access_token.as_deref());
        Ok(response.into_reply())
    }

    /// Reservation and order paths name no event: the origin knows it and
    /// checks the token's event itself. Here a presented token must verify.
    pub(super) async fn gate_by_origin(&self) -> Result<Reply<R>, Problem> {
        let access_cookies = edge_core::cookies::cookies(self.incoming.request.headers())
            .filter(|(name, _)| name.starts_with(ACCESS_COOKIE_PREFIX))
            .map(|(_, value)| value);
        let presented = self.bearer().into_iter().chain(access_cookies);
        let verifier = self.config.keys.verifier();
        let mut valid = Vec::new();
        let mut refusal = None;
        for token in presented {
            // The event is unknown here, so read it from the token itself,
            // then verify everything against it.
            let Some(event) = queue_tokens::unverified_audience(token) else { continue };
            match verifier.verify::<AccessClaims>(token, Kind::Access, &event, self.now_s()) {
                Ok(claims) => valid.push(claims),
                Err(TokenError::WrongKind) => {}
                Err(e) => {
                    self.store.count_rejected(&event, e.code()).await;
                    refusal = Some(e);
                }
            }
        }
        match (valid.is_empty(), refusal) {
            (true, Some(e)) => Err(Problem::InvalidToken(e)),
            _ => self.forward(&valid).await,
        }
    }

    pub(super) fn wants_html(&self) -> bool {
        let request = &self.incoming.request;
        let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        request.method() == Method::GET && accept.contains("text/html")
    }

    /// The waiting room for a browser at a checkout URL: joins it on the
    /// way in (unless a puzzle must be solved first) and, once admitted,
    /// sends it back to the same URL with the access cookie.
    pub(super) async fn waiting_page(&self, event: &str, view: View) -> Result<Response, Problem> {
        // A ticket whose visit has ended counts as none: the visitor queues anew.
        let mut standing = None;
        if let Some(ticket) = self.ticket(event).await {
            match self.standing(event, &view, &ticket, None).await {
                Err(Problem::SessionEnded) => {}
                status => standing = Some((ticket, status?)),
            }
        }
        let (ticket, new_token, view, status) = match standing {
            Some((ticket, status)) => (Some(ticket), None, view, status),
            None if view.settings.pow_difficulty > 0 => {
                let status = self.phase_status(event, &view, None);
                (None, None, view, status)
            }
            None => {
                let (ticket, view) = self.take_ticket(event, view, &JoinBody::default()).await?;
                let token = ticket.as_ref().map(|t| self.config.keys.sign(Kind::Queue, &t.claims));
                let (ticket, status) = match ticket {
                    Some(NewTicket { claims, admission }) => {
                        let status = self.standing(event, &view, &claims, admission).await?;
                        (Some(claims), status)
                    }
                    None => (None, self.phase_status(event, &view, None)),
                };
                (ticket, token, view, status)
            }
        };
        let mut response = if status.state == State::Admitted {
            let mut redirect = empty(StatusCode::SEE_OTHER);
            let target = self.incoming.request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
            set(&mut redirect, header::LOCATION, &target);
            redirect
        } else {
            let challenge;
            let puzzle = if ticket.is_none() && view.settings.pow_difficulty > 0 {
                challenge = self.challenge_token(event, view.settings.pow_difficulty);
                Some(Puzzle { challenge: &challenge, bits: view.settings.pow_difficulty })
            } else {
                None
            };
            let html = waiting_room(&view.settings, &status, puzzle);
            let mut page = with_body(StatusCode::OK, "text/html; charset=utf-8", html.into_bytes());
            page.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
            page
        };
        self.set_cookies(&mut response, event, &view, new_token.as_deref(), status.access_token.as_deref());
        Ok(response)
    }

    /// Passes the request to the origin and its answer back, the body
    /// relayed as it arrives (the live seat map is a stream that does not
    /// end); frees the session slot when the origin says the session is over.
    pub(super) async fn forward(&self, sessions: &[AccessClaims]) -> Result<Reply<R>, Problem> {
        self.pass(sessions).await.map(|(answer, _)| answer)
    }

    /// [`Self::forward`], and whether the origin said one of `sessions` is over.
    async fn pass(&self, sessions: &[AccessClaims]) -> Result<(Reply<R>, bool), Problem> {
        let request = &self.incoming.request;
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut outbound = http::Request::builder()
            .method(request.method())
            .uri(format!("{}{target}", self.config.origin_url));
        let headers = outbound.headers_mut().expect("a fresh builder");
        for (name, value) in request.headers() {
            if !is_hop_by_hop(name.as_str()) && !name.as_str().starts_with("spin-") && name != header::HOST {
                headers.append(name, value.clone());
            }
        }
        if let Some(client) = &self.incoming.client_ip {
            headers.insert("x-forwarded-for", header_value(client));
        }
        headers.insert(
            "x-forwarded-proto",
            HeaderValue::from_static(if self.incoming.https { "https" } else { "http" }),
        );
        if let Some(host) = request.headers().get(header::HOST) {
            headers.insert("x-forwarded-host", host.clone());
        }
        // A GET or HEAD body means nothing, and the Fetch API refuses to send
        // one: it is dropped, with its length, on every runtime alike.
        let body = if matches!(*request.method(), Method::GET | Method::HEAD) {
            let headers = outbound.headers_mut().expect("a fresh builder");
            headers.remove(header::CONTENT_LENGTH);
            Vec::new()
        } else {
            request.body().clone()
        };
        let outbound = outbound.body(body).expect("a valid request");
        let mut answer = self.runtime.open(outbound).await.map_err(|e| StoreError::Origin(e.to_string()))?;
        let ended = answer.headers_mut().remove(SESSION_ENDED_HEADER);
        let ended = ended.and_then(|event| sessions.iter().find(|s| event.as_bytes() == s.aud.as_bytes()));
        if let Some(session) = ended {
            // The origin's answer (an order, often) reaches the visitor even
            // while Redis is away: the slot then frees itself when the
            // session lapses, and the origin refuses the token meanwhile.
            if let Err(e) = self.store.end_session(&session.aud, &session.sub).await {
                self.runtime.log(&format!("edge-queue: session over, slot not freed yet: {e}"));
            }
            let expired = edge_core::cookies::removal(&access_cookie(&session.aud));
            answer.headers_mut().append(header::SET_COOKIE, header_value(&expired));
        }
        answer.headers_mut().retain_hop_by_hop_free();
        Ok((answer.map(Body::Relayed), ended.is_some()))
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

trait HopByHop {
    fn retain_hop_by_hop_free(&mut self);
}

impl HopByHop for HeaderMap {
    fn retain_hop_by_hop_free(&mut self) {
        let names: Vec<_> = self.keys().filter(|n| is_hop_by_hop(n.as_str())).cloned().collect();
        for name in names {
            self.remove(name);
        }
    }
}
