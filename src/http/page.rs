//! The one HTML page (`GET /`): the live view of each camera and an enrollment upload form.
//!
//! Every URL in it is relative: Home Assistant ingress serves the add-on under
//! `/api/hassio_ingress/<token>/`, so an absolute `/api/...` would leave that prefix and miss the add-on.
//! The upload sends the file as the raw request body with `fetch` (no multipart parsing on the server).

use super::state::LiveView;

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>facegate</title>
<style>
body{font-family:system-ui,sans-serif;margin:1rem;background:#111;color:#eee}
img{max-width:100%;border:1px solid #444}
section{margin-bottom:1.5rem}
input,button{font-size:1rem;margin:.2rem}
#result{white-space:pre-wrap;font-family:monospace}
</style></head><body>
<h1>facegate</h1>
"#;

const TAIL: &str = r#"<section><h2>Enroll a person</h2>
<form id="enroll"><input id="name" placeholder="Name" required>
<input id="photo" type="file" accept="image/*" required><button>Enroll</button></form>
<div id="result"></div></section>
<script>
document.getElementById('enroll').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = document.getElementById('name').value;
  const file = document.getElementById('photo').files[0];
  const out = document.getElementById('result');
  out.textContent = 'uploading...';
  try {
    const r = await fetch('api/enroll?name=' + encodeURIComponent(name),
      {method: 'POST', body: file, headers: {'Content-Type': file.type.startsWith('image/') ? file.type : 'image/jpeg'}});
    const j = await r.json();
    out.textContent = r.ok ? 'enrolled ' + j.name + ' (' + j.embeddings + ' images)' : 'refused: ' + j.error;
  } catch (e) { out.textContent = 'failed: ' + e; }
});
</script>
</body></html>
"#;

/// The page for the cameras `view` knows now.
pub fn render(view: &LiveView) -> String {
    let mut html = String::from(HEAD);
    let cameras = view.cameras();
    if cameras.is_empty() {
        html.push_str("<p>No cameras are configured.</p>\n");
    }
    for cam in cameras {
        let q = url_encode(&cam);
        let name = html_escape(&cam);
        html.push_str(&format!(
            "<section><h2>{name}</h2><img src=\"api/stream.mjpg?camera={q}\" alt=\"live view of {name}\">\n\
             <p><a href=\"api/snapshot.jpg?camera={q}\">snapshot</a> · \
             <a href=\"api/events?camera={q}\">recent events</a></p></section>\n"
        ));
    }
    html.push_str(TAIL);
    html
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Percent-encoding for a query value (everything but unreserved characters).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_names_are_escaped_and_urls_relative() {
        let view = LiveView::default();
        view.add_camera("Front <door> & \"lift\"");
        let html = render(&view);
        assert!(html.contains("<h2>Front &lt;door&gt; &amp; &quot;lift&quot;</h2>"));
        assert!(
            html.contains("src=\"api/stream.mjpg?camera=Front%20%3Cdoor%3E%20%26%20%22lift%22\"")
        );
        assert!(
            !html.contains("\"/api"),
            "absolute URLs break under ingress"
        );
        assert!(html.contains("fetch('api/enroll?name="));
    }
}
