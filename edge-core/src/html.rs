//! HTML escaping and the shared page frame (inline CSS, no external assets).

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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

/// A complete page: `title` is text (escaped here), `body` is trusted HTML.
pub fn page(title: &str, body: &str) -> String {
    page_with_head(title, "", body)
}

/// A page with extra trusted markup in `<head>` (styles, meta refresh).
pub fn page_with_head(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · Stampede</title><style>{STYLE}</style>{head}</head>\
         <body><header><a href=\"/events\">Stampede</a></header><main>{body}</main></body></html>",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert!(!page("<b>", "").contains("<b>"));
    }
}
