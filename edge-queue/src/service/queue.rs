//! The queue's use cases: join, status, challenge, leave, stats.

use super::*;

/// Body of a join: the solved puzzle when the sale asks for one.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct JoinBody {
    challenge: Option<String>,
    nonce: Option<String>,
}

/// A ticket just issued, with the admission attempt made in the same
/// command, if any.
pub(super) struct NewTicket {
    pub claims: QueueClaims,
    pub admission: Option<Admission>,
}

impl<R: Runtime> Room<'_, R> {
    pub(super) async fn join(&self, event: &str) -> Result<Response, Problem> {
        let view = self.store.view(event).await?.live()?;
        if let Some(ticket) = self.ticket(event).await {
            // One place per visitor: joining again changes nothing, unless
            // that visit is over; then the visitor queues anew.
            match self.answer(event, &view, &ticket, None, None).await {
                Err(Problem::SessionEnded) => {}
                answer => return answer,
            }
        }
        let body: JoinBody = if self.incoming.request.body().is_empty() {
            JoinBody::default()
        } else {
            serde_json::from_slice(self.incoming.request.body())
                .map_err(|e| Problem::BadRequest(format!("invalid join body: {e}")))?
        };
        let (ticket, view) = self.take_ticket(event, view, &body).await?;
        match ticket {
            Some(NewTicket { claims, admission }) => {
                let token = self.config.keys.sign(Kind::Queue, &claims);
                self.answer(event, &view, &claims, Some(token), admission).await
            }
            None => Ok(json(StatusCode::OK, &self.phase_status(event, &view, None))),
        }
    }

    /// Issues a ticket if the sale takes joins now; checks the per-address
    /// limit and the proof of work first.
    pub(super) async fn take_ticket(
        &self,
        event: &str,
        view: View,
        body: &JoinBody,
    ) -> Result<(Option<NewTicket>, View), Problem> {
        let phase = view.settings.phase(self.now());
        if !matches!(phase, Phase::Prequeue | Phase::Selling | Phase::Paused) {
            return Ok((None, view));
        }
        let view = view.live()?;
        if view.settings.pow_difficulty > 0 {
            self.check_proof_of_work(event, view.settings.pow_difficulty, body).await?;
        }
        let client = self.incoming.client_ip.as_deref();
        let limit = self.config.joins_per_minute;
        let visitor = hex(&self.runtime.random()[..16]);
        let ticket = if phase == Phase::Selling {
            self.store.join_and_admit(event, &view, client, limit, &visitor).await?
        } else {
            self.store.issue_ticket(event, phase == Phase::Prequeue, client, limit).await?
        };
        let mut view = view;
        let (n, pre, admission) = match ticket {
            Ticket::Prequeue(n) => (n, true, None),
            Ticket::Queue(n) => (n, false, None),
            Ticket::Admitting { n, prequeue, admission } => {
                view.prequeue.get_or_insert(prequeue);
                (n, false, Some(admission))
            }
            Ticket::Limited => return Err(Problem::RateLimited),
        };
        let claims = QueueClaims {
            iss: self.config.keys.issuer().to_owned(),
            sub: visitor,
            aud: event.to_owned(),
            n,
            pre,
            iat: self.now_s(),
        };
        Ok((Some(NewTicket { claims, admission }), view))
    }

    pub(super) async fn check_proof_of_work(
        &self,
        event: &str,
        bits: u8,
        body: &JoinBody,
    ) -> Result<(), Problem> {
        let (Some(challenge), Some(nonce)) = (&body.challenge, &body.nonce) else {
            return Err(Problem::ProofOfWorkRequired);
        };
        let claims: ChallengeClaims = self
            .config
            .keys
            .verifier()
            .verify(challenge, Kind::Challenge, event, self.now_s())
            .map_err(|_| Problem::ProofOfWorkInvalid)?;
        if !pow::is_solved(challenge, nonce, claims.bits.max(bits))
            || !self.store.spend_challenge(event, &claims.jti).await?
        {
            return Err(Problem::ProofOfWorkInvalid);
        }
        Ok(())
    }

    pub(super) async fn challenge(&self, event: &str) -> Result<Response, Problem> {
        let view = self.store.view(event).await?;
        let bits = view.settings.pow_difficulty.min(pow::MAX_BITS);
        let challenge = self.challenge_token(event, bits);
        Ok(json(StatusCode::OK, &serde_json::json!({ "challenge": challenge, "bits": bits })))
    }

    pub(super) async fn status(&self, event: &str) -> Result<Response, Problem> {
        let view = self.store.view(event).await?;
        if let Ok(Some(_)) = self.access(event).await {
            let status =
                Status { checkout_url: Some(checkout_path(event)), ..Status::new(State::Admitted, event) };
            return Ok(json(StatusCode::OK, &status));
        }
        match self.ticket(event).await {
            Some(ticket) => self.answer(event, &view, &ticket, None, None).await,
            None if view.settings.phase(self.now()) == Phase::Open => {
                Ok(json(StatusCode::OK, &self.phase_status(event, &view, None)))
            }
            None => Err(Problem::NotInQueue),
        }
    }

    /// The visitor's standing as JSON, with cookies for new tokens.
    pub(super) async fn answer(
        &self,
        event: &str,
        view: &View,
        ticket: &QueueClaims,
        new_queue_token: Option<String>,
        admission: Option<Admission>,
    ) -> Result<Response, Problem> {
        let mut status = self.standing(event, view, ticket, admission).await?;
        status.queue_token = new_queue_token.clone();
        let mut response = json(StatusCode::OK, &status);
        self.set_cookies(
            &mut response,
            event,
            view,
            new_queue_token.as_deref(),
            status.access_token.as_deref(),
        );
        Ok(response)
    }

    /// Where a ticket holder stands now, admitting them if it is their turn
    /// (unless `admission`, made with their new ticket, already says).
    pub(super) async fn standing(
        &self,
        event: &str,
        view: &View,
        ticket: &QueueClaims,
        admission: Option<Admission>,
    ) -> Result<Status, Problem> {
        let now = self.now();
        let phase = view.settings.phase(now);
        let mut status = self.phase_status(event, view, Some(ticket));
        if !matches!(phase, Phase::Selling | Phase::Paused) {
            return Ok(status);
        }
        let mut view = view.clone().live()?;
        if view.prequeue.is_none() {
            view.prequeue = Some(self.store.freeze_prequeue(event).await?);
        }
        let prequeue = view.prequeue.as_ref().expect("frozen above");
        let position = if ticket.pre {
            if ticket.n == 0 || ticket.n > prequeue.size {
                return Err(Problem::BadRequest("this ticket is not part of the pre-queue".into()));
            }
            prequeue.shuffle.place(ticket.n - 1) + 1
        } else {
            prequeue.size + ticket.n
        };
        let limits = view.limits();
        let now_ms = self.now_ms;
        // Admitted before a pause still counts: the pause stops new admissions only.
        let entry = match admission {
            Some(admission) if !admission.is_worth_retrying(&limits, now_ms, position) => {
                view.frontier = admission.frontier;
                admission.entry
            }
            _ if view.worth_asking(now_ms, position) => {
                let selling = phase == Phase::Selling;
                let (entry, frontier) =
                    self.store.admit(event, &view, selling, position, &ticket.sub).await?;
                view.frontier = frontier;
                entry
            }
            _ => Entry::Waiting,
        };
        if let Entry::Ended = entry {
            return Err(Problem::SessionEnded);
        }
        if let Entry::Session(until) = entry {
            status.state = State::Admitted;
            status.access_token = Some(self.access_token(event, &ticket.sub, until));
            status.checkout_url = Some(checkout_path(event));
            status.position = Some(position);
            status.ahead = Some(0);
            return Ok(status);
        }
        let ahead = position.saturating_sub(view.frontier.admitted + 1);
        let wait = view.frontier.estimated_wait_seconds(&limits, now_ms, position);
        status.position = Some(position);
        status.ahead = Some(ahead);
        status.reason =
            Some(if view.frontier.capped { WaitReason::CheckoutFull } else { WaitReason::InLine });
        status.estimated_wait_seconds = Some(wait);
        status.refresh_after_seconds = Some(refresh_after_seconds(ahead, wait, self.jitter()));
        Ok(status)
    }

    /// What everyone is told in this phase, before any position is known.
    pub(super) fn phase_status(&self, event: &str, view: &View, ticket: Option<&QueueClaims>) -> Status {
        let now = self.now();
        let mut status = Status::new(State::Waiting, event);
        status.ticket = ticket.map(|t| t.n);
        status.sale_starts_at = view.settings.sale_starts_at.map(|s| s.to_rfc3339());
        match view.settings.phase(now) {
            Phase::Open => {
                status.state = State::Admitted;
                status.checkout_url = Some(checkout_path(event));
            }
            Phase::NotYetOpen | Phase::Closed => status.state = State::Closed,
            Phase::SoldOut => status.state = State::SoldOut,
            Phase::Prequeue => {
                let until_start_ms = view.settings.admissions_open_ms() - self.now_ms;
                let joined = view.prequeue_joined.max(ticket.filter(|t| t.pre).map_or(0, |t| t.n));
                let range =
                    prequeue_wait_range_seconds(until_start_ms, joined, view.settings.new_users_per_minute);
                status.state = State::Prequeue;
                status.estimated_wait_seconds = Some(range[0]);
                status.wait_range_seconds = Some(range);
                // Everyone is drawn at the start: come back then, spread out.
                status.refresh_after_seconds =
                    Some(prequeue_refresh_after_seconds(until_start_ms, joined, self.jitter()));
            }
            Phase::Paused => {
                status.state = State::Paused;
                status.refresh_after_seconds = Some(refresh_after_seconds(500, 60, self.jitter()));
            }
            Phase::Selling => {}
        }
        if status.state == State::Closed || status.state == State::SoldOut {
            status.refresh_after_seconds = None;
        }
        if !view.settings.message.trim().is_empty() {
            status.message = Some(view.settings.message.clone());
        }
        status
    }

    pub(super) fn jitter(&self) -> f64 {
        f64::from(self.runtime.random()[0]) / 255.0
    }

    /// Ends the visit: the slot is freed, the queue ticket cannot be
    /// admitted again, and the origin refuses the access token from now on.
    pub(super) async fn leave(&self, event: &str) -> Result<Response, Problem> {
        // The origin first: the gate passes any valid access token, and the
        // origin's list of ended sessions is what refuses it afterwards.
        if let Ok(Some(access)) = self.access(event).await {
            self.end_at_origin(event, None).await?;
            self.store.end_session(event, &access.sub).await?;
        } else if let Some(ticket) = self.ticket(event).await {
            // Its session's access token may be kept elsewhere (another
            // tab, an app): the origin is told the session is over by a
            // token of that session, made for the purpose.
            if let Some(until) = self.store.session_until(event, &ticket.sub).await? {
                let token = self.access_token(event, &ticket.sub, until);
                self.end_at_origin(event, Some(&token)).await?;
            }
            self.store.end_session(event, &ticket.sub).await?;
        }
        let mut response = json(StatusCode::OK, &serde_json::json!({ "state": "left", "event_id": event }));
        for name in [queue_cookie(event), access_cookie(event)] {
            append_cookie(&mut response, &edge_core::cookies::removal(&name));
        }
        Ok(response)
    }

    /// An access token for `visitor`'s session of `event`, which ends at `until` (ms).
    fn access_token(&self, event: &str, visitor: &str, until: i64) -> String {
        let access = AccessClaims {
            iss: self.config.keys.issuer().to_owned(),
            sub: visitor.to_owned(),
            aud: event.to_owned(),
            iat: self.now_s(),
            exp: until / 1000,
            // One id per session, whichever poll issued the token: ending
            // the session at the origin ends every token of it.
            jti: format!("{visitor}.{until}"),
        };
        self.config.keys.sign(Kind::Access, &access)
    }

    /// Tells the origin an access token's session is over: `token`'s, or
    /// else the one the visitor presented.
    async fn end_at_origin(&self, event: &str, token: Option<&str>) -> Result<(), Problem> {
        let mut request =
            http::Request::delete(format!("{}/api/v1/events/{event}/access", self.config.origin_url));
        match token {
            Some(token) => request = request.header(header::AUTHORIZATION, format!("Bearer {token}")),
            // The origin finds the verified token among what the visitor presented.
            None => {
                for name in [header::AUTHORIZATION, header::COOKIE] {
                    for value in self.incoming.request.headers().get_all(&name) {
                        request = request.header(&name, value);
                    }
                }
            }
        }
        let answer = self
            .runtime
            .send(request.body(Vec::new()).expect("a valid request"))
            .await
            .map_err(|e| StoreError::Origin(e.to_string()))?;
        match answer.status() {
            StatusCode::NO_CONTENT => Ok(()),
            status => {
                Err(Problem::Store(StoreError::Origin(format!("ending the session answered {status}"))))
            }
        }
    }

    /// Queue figures for the event's organizer; the origin checks the key.
    pub(super) async fn stats(&self, event: &str) -> Result<Response, Problem> {
        let authorization = self.incoming.request.headers().get(header::AUTHORIZATION).cloned();
        let mut check =
            http::Request::get(format!("{}/api/v1/organizer/events/{event}", self.config.origin_url));
        if let Some(value) = authorization {
            check = check.header(header::AUTHORIZATION, value);
        }
        let answer = self
            .runtime
            .send(check.body(Vec::new()).expect("a valid request"))
            .await
            .map_err(|e| StoreError::Origin(e.to_string()))?;
        match answer.status() {
            StatusCode::OK => {}
            // The origin failing is not the key being refused.
            status if status.is_server_error() => {
                return Err(StoreError::Origin(format!("the origin answered {status}")).into());
            }
            status => {
                return Err(Problem::Organizer(
                    "the organizer API key was refused for this event".into(),
                    status,
                ));
            }
        }
        let view = self.store.view(event).await?.live()?;
        let stats = self.store.stats(event).await?;
        let waiting = stats.issued.saturating_sub(view.frontier.admitted);
        let limits = view.limits();
        let last_in_line = view.frontier.estimated_wait_seconds(&limits, self.now_ms, stats.issued);
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "event_id": event,
                "issued": stats.issued,
                "waiting": waiting,
                "admitted": view.frontier.admitted,
                "active_sessions": stats.sessions,
                "reserved_slots": stats.reserved_slots,
                "admission_rate_per_minute": (view.frontier.rate * 60.0).round(),
                "configured_rate_per_minute": view.settings.new_users_per_minute,
                "total_active_users": view.settings.total_active_users,
                "paused": view.settings.paused,
                "estimated_wait_seconds_for_last": last_in_line,
                "rejected_tokens": stats.rejected,
            }),
        ))
    }
}
