//! The waiting-room page: server-rendered, no external assets, usable
//! without JavaScript (a meta refresh reloads it) and livelier with it
//! (polls the status API when told to, solves the proof of work, moves on
//! to checkout when admitted).

use edge_core::catalog::local_time;
use edge_core::html::page_with_head;
use maud::{Markup, PreEscaped, html};

use crate::settings::RoomSettings;
use crate::status::{State, Status, WaitReason};

/// A proof-of-work puzzle the page must solve before it may join.
pub struct Puzzle<'a> {
    pub challenge: &'a str,
    pub bits: u8,
}

const DEFAULT_ACCENT: &str = "#4338ca";

/// The organizer's accent colour if it is a plain `#rrggbb`, else ours:
/// it lands inside a stylesheet.
fn accent(color: &str) -> &str {
    let valid =
        color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if valid { color } else { DEFAULT_ACCENT }
}

pub fn waiting_room(room: &RoomSettings, status: &Status, puzzle: Option<Puzzle>) -> String {
    let refresh = status.refresh_after_seconds.unwrap_or(10);
    let style = format!(
        ".room{{border-top:.4rem solid {accent}}}progress{{width:100%;height:1.2rem;accent-color:{accent}}}\
         .figures{{display:flex;gap:2rem;flex-wrap:wrap}}.figures div{{font-size:1.6rem;font-weight:700}}\
         .figures span{{display:block;font-size:.85rem;font-weight:400;color:#555}}",
        accent = accent(&room.accent_color)
    );
    let head = html! {
        noscript { meta http-equiv="refresh" content=(refresh); }
        // The accent is a checked `#rrggbb`; nothing else in the sheet varies.
        style { (PreEscaped(style)) }
    };
    let body = html! {
        section.card.room aria-labelledby="room-title" data-event=(status.event_id) data-refresh=(refresh)
            data-state=(state_key(status))
            data-challenge=[puzzle.as_ref().map(|p| p.challenge)] data-bits=[puzzle.as_ref().map(|p| p.bits)] {
            h1 #room-title { (room.title) }
            @if !room.message.trim().is_empty() { p { (room.message) } }
            div #room-state role="status" aria-live="polite" { (state_html(room, status)) }
        }
        script { (PreEscaped(SCRIPT)) }
    };
    page_with_head(&format!("Waiting room: {}", room.title), head, body)
}

/// The state and, in line, the reason: the script reloads the page when
/// this changes (a new sentence), and updates the figures in place otherwise.
fn state_key(status: &Status) -> String {
    let state = serde_json::to_value(status.state).ok();
    let reason = status.reason.and_then(|r| serde_json::to_value(r).ok());
    let name =
        |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    match status.reason {
        Some(_) => format!("{}:{}", name(state), name(reason)),
        None => name(state),
    }
}

/// The sale start in the venue's time zone, as a `<time>` the script
/// counts down to.
fn start_time(room: &RoomSettings, status: &Status) -> Option<Markup> {
    let start = status.sale_starts_at.as_deref()?;
    let at = chrono::DateTime::parse_from_rfc3339(start).ok()?.with_timezone(&chrono::Utc);
    Some(html! { time datetime=(start) data-countdown { (local_time(at, &room.timezone)) } })
}

fn state_html(room: &RoomSettings, status: &Status) -> Markup {
    let wait = status.estimated_wait_seconds.map(minutes).unwrap_or_else(|| "—".into());
    match status.state {
        State::Waiting => {
            let position = status.position.unwrap_or(0);
            let ahead = status.ahead.unwrap_or(0);
            // Those who went in before you, out of everyone up to you: the
            // bar fills only when you are in.
            let done = position.saturating_sub(ahead + 1);
            let why = match (status.reason, ahead) {
                (Some(WaitReason::CheckoutFull), _) => {
                    "Checkout is full right now: the line moves as the buyers in it finish."
                }
                (_, 0) => "You are next in line.",
                _ => "You are in line.",
            };
            html! {
                p #reason { (why) " Keep this page open: it moves on by itself when it is your turn." }
                div.figures {
                    div { b #place { (position) } span { "your place" } }
                    div { b #ahead { (ahead) } span { "people ahead of you" } }
                    div { b #wait { (wait) } span { "estimated wait" } }
                }
                p { label { "Progress " progress #progress max=(position) value=(done) { (done) " of " (position) } } }
            }
        }
        State::Prequeue => html! {
            p {
                "The sale has not started yet. It starts at "
                @if let Some(start) = start_time(room, status) { (start) } @else { "soon" }
                "; then everyone here gets a random place ahead of later arrivals: arriving earlier gives no \
                 advantage."
            }
            p { "Starts in " strong #countdown { (wait) } "." }
            @if let Some([shortest, longest]) = status.wait_range_seconds {
                p { "Your wait: between " (minutes(shortest)) " and " (minutes(longest)) ", depending on the place you draw." }
            }
        },
        State::Admitted => html! {
            p {
                "It is your turn. "
                a.button href=(status.checkout_url.as_deref().unwrap_or("/")) { "Continue to checkout" }
            }
        },
        State::Paused => html! {
            p {
                "The organizer has paused the sale for a moment. You keep your place in line; this page goes on \
                 by itself when the sale resumes."
            }
        },
        State::SoldOut => html! { p { "This event is sold out." } },
        State::Closed => match start_time(room, status) {
            Some(start) => html! {
                p { "The sale has not started yet. It opens at " (start) ": come back then." }
                p { "Opens in " strong #countdown { (wait) } "." }
            },
            None => html! { p { "The sale is not open." } },
        },
    }
}

fn minutes(seconds: u64) -> String {
    match seconds {
        0..60 => "under a minute".into(),
        60..3600 => format!("about {} min", seconds.div_ceil(60)),
        _ => format!("about {} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// Polls the status API at the pace the server asks for, solves the proof
/// of work before joining, and follows the checkout link once admitted.
/// The figures change in place; a new state (or reason) reloads the page,
/// so every sentence is the server's. The countdown ticks every second.
const SCRIPT: &str = r#"(function(){
var room=document.querySelector('.room'),ev=room.dataset.event,box=document.getElementById('room-state');
var api='/api/v1/events/'+ev+'/queue/';
function $(id){return document.getElementById(id)}
function minutes(s){return s<60?'under a minute':s<3600?'about '+Math.ceil(s/60)+' min':
 'about '+Math.floor(s/3600)+' h '+Math.floor(s%3600/60)+' min'}
function hex(buf){return Array.from(new Uint8Array(buf)).map(function(b){return b.toString(16).padStart(2,'0')}).join('')}
async function solve(challenge,bits){var enc=new TextEncoder();for(var n=0;;n++){
 var h=new Uint8Array(await crypto.subtle.digest('SHA-256',enc.encode(challenge+':'+n)));var z=0;
 for(var i=0;i<h.length;i++){if(h[i]===0){z+=8;continue}z+=Math.clz32(h[i])-24;break}
 if(z>=bits)return String(n)}}
var start=document.querySelector('time[data-countdown]');
if(start){var at=Date.parse(start.getAttribute('datetime'));setInterval(function(){
 var left=Math.max(0,Math.round((at-Date.now())/1000)),c=$('countdown');if(!c)return;
 c.textContent=left>=3600?minutes(left):Math.floor(left/60)+' min '+String(left%60).padStart(2,'0')+' s'},1000)}
function show(s){
 if(s.state==='admitted'&&s.checkout_url){location.assign(s.checkout_url);return 0}
 if((s.reason?s.state+':'+s.reason:s.state)!==room.dataset.state){location.reload();return 0}
 if(s.state==='waiting'){$('place').textContent=s.position;$('ahead').textContent=s.ahead;
  $('wait').textContent=minutes(s.estimated_wait_seconds||0);var p=$('progress');
  var done=Math.max(0,s.position-s.ahead-1);p.max=s.position;p.value=done;p.textContent=done+' of '+s.position}
 if(s.state==='sold_out')return 0;
 return s.refresh_after_seconds||10}
async function poll(){var wait=10;try{
 var r=await fetch(api+'status',{credentials:'same-origin',headers:{accept:'application/json'}});
 var s=await r.json();if(s.error==='not_in_queue'){await join();return}wait=show(s)}catch(e){}
 if(wait)setTimeout(poll,wait*1000)}
async function join(){var body={};
 if(room.dataset.challenge){box.textContent='Checking your browser…';body={challenge:room.dataset.challenge,
  nonce:await solve(room.dataset.challenge,+room.dataset.bits)}}
 var r=await fetch(api+'join',{method:'POST',credentials:'same-origin',
  headers:{'content-type':'application/json',accept:'application/json'},body:JSON.stringify(body)});
 var s=await r.json();var wait=show(s);if(wait)setTimeout(poll,wait*1000)}
if(room.dataset.challenge){join()}else{setTimeout(poll,(+room.dataset.refresh||10)*1000)}
})();"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::example;

    fn waiting() -> Status {
        Status {
            position: Some(120),
            ahead: Some(20),
            estimated_wait_seconds: Some(150),
            refresh_after_seconds: Some(12),
            ..Status::new(State::Waiting, "e1")
        }
    }

    #[test]
    fn shows_place_wait_and_progress_and_refreshes_without_javascript() {
        let html = waiting_room(&example(), &waiting(), None);
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"12\">"));
        assert!(html.contains("<b id=\"place\">120</b><span>your place</span>"));
        assert!(html.contains("<b id=\"ahead\">20</b><span>people ahead of you</span>"));
        assert!(html.contains("<b id=\"wait\">about 3 min</b>"));
        assert!(html.contains("<progress id=\"progress\" max=\"120\" value=\"99\">"), "full only once in");
        assert!(html.contains("You are in line."));
        assert!(html.contains("role=\"status\""));
        assert!(!html.contains("src=\"http"), "no external assets");
    }

    #[test]
    fn organizer_text_and_colour_cannot_inject_markup() {
        let room = RoomSettings {
            title: "<script>alert(1)</script>".into(),
            message: "<img src=x onerror=alert(2)>".into(),
            accent_color: "red}</style><script>alert(3)</script>".into(),
            ..example()
        };
        let html = waiting_room(&room, &waiting(), None);
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains(DEFAULT_ACCENT));
        let themed =
            waiting_room(&RoomSettings { accent_color: "#ff0066".into(), ..example() }, &waiting(), None);
        assert!(themed.contains("solid #ff0066"));
    }

    #[test]
    fn prequeue_explains_the_draw_and_a_puzzle_is_handed_to_the_script() {
        let status = Status {
            sale_starts_at: Some("2027-01-01T10:00:00Z".into()),
            estimated_wait_seconds: Some(600),
            wait_range_seconds: Some([600, 1_800]),
            ..Status::new(State::Prequeue, "e1")
        };
        let html = waiting_room(&example(), &status, Some(Puzzle { challenge: "abc.def", bits: 16 }));
        assert!(html.contains("random place"));
        assert!(
            html.contains("between about 10 min and about 30 min, depending on the place you draw"),
            "{html}"
        );
        assert!(
            html.contains(
                "<time datetime=\"2027-01-01T10:00:00Z\" data-countdown>Fri 1 Jan 2027, 11:00 CET</time>"
            ),
            "the start in the venue's time: {html}"
        );
        assert!(html.contains("data-challenge=\"abc.def\" data-bits=\"16\""));
    }

    #[test]
    fn the_page_says_why_a_visitor_waits() {
        let said = |status: Status| waiting_room(&example(), &status, None);
        let full = said(Status { reason: Some(WaitReason::CheckoutFull), ahead: Some(0), ..waiting() });
        assert!(full.contains("Checkout is full right now"), "{full}");
        assert!(full.contains("data-state=\"waiting:checkout_full\""));
        let next = said(Status { reason: Some(WaitReason::InLine), ahead: Some(0), ..waiting() });
        assert!(next.contains("You are next in line.") && next.contains("data-state=\"waiting:in_line\""));
        let zero = said(Status { estimated_wait_seconds: Some(0), ..waiting() });
        assert!(zero.contains("<b id=\"wait\">under a minute</b>"), "never \"0 min\"");
        assert!(said(Status::new(State::Paused, "e1")).contains("paused the sale"));
        let closed = said(Status {
            sale_starts_at: Some("2027-01-01T10:00:00Z".into()),
            ..Status::new(State::Closed, "e1")
        });
        assert!(
            closed.contains("has not started yet") && closed.contains("Fri 1 Jan 2027, 11:00 CET"),
            "{closed}"
        );
        assert!(said(Status::new(State::SoldOut, "e1")).contains("sold out"));
    }

    #[test]
    fn admitted_visitors_get_a_link_even_without_javascript() {
        let status =
            Status { checkout_url: Some("/events/e1/checkout".into()), ..Status::new(State::Admitted, "e1") };
        assert!(waiting_room(&example(), &status, None).contains("href=\"/events/e1/checkout\""));
    }
}
