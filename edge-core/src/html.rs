//! The shared page frame (inline CSS, no external assets): a `maud`
//! template the edge's and the origin's pages fill. Every value a page
//! shows passes through maud, which escapes it.

use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f6f6f8}\
header{background:#1d1b4b;color:#fff;padding:1rem 1.5rem}header a{color:#fff;text-decoration:none;font-weight:700}\
main{max-width:60rem;margin:0 auto;padding:1.5rem}\
.card{background:#fff;border-radius:.5rem;padding:1rem 1.25rem;margin:0 0 1rem;box-shadow:0 1px 3px #0002}\
.card h2{margin:.2rem 0}.muted{color:#555}.band{font-weight:600}\
.available{color:#0a7a32}.few{color:#b45309}.sold_out{color:#b91c1c}\
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem}\
label{display:flex;flex-direction:column;font-size:.85rem}input,button{font:inherit;padding:.35rem}\
a.button{display:inline-block;background:#4338ca;color:#fff;padding:.6rem 1.2rem;border-radius:.4rem;text-decoration:none}\
a:focus,button:focus,input:focus,select:focus{outline:3px solid #1d4ed8;outline-offset:2px}header a:focus{outline-color:#fff}\
nav.pages{display:flex;gap:1rem}";

/// A complete page in the shared frame; `title` is text.
pub fn page(title: &str, body: Markup) -> String {
    page_with_head(title, html! {}, body)
}

/// A page saying one thing, with the way back to the event list.
pub fn notice(title: &str, heading: &str) -> String {
    page(title, html! { h1 { (heading) } p { a href="/events" { "All events" } } })
}

/// A page with extra markup in `<head>` (styles, meta refresh).
pub fn page_with_head(title: &str, head: Markup, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) " · Stampede" }
                style { (PreEscaped(STYLE)) }
                (head)
            }
            body {
                header { a href="/events" { "Stampede" } }
                main { (body) }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        let text = r#"<script>alert("x")</script> & 'y'"#;
        let html = notice(text, text);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;"), "{html}");
        assert!(!page("<b>", html! {}).contains("<b>"));
    }
}
